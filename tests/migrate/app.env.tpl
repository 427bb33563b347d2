{{- with listSecrets "cb7fcb73-a6e6-490e-ae23-bc4878a67111" "prod" "/backend" }}
{{- range . }}
{{ .Key }}={{ .Value }}
{{- end }}
{{- end }}

#!/bin/sh
# The floor for `init`: the same two exchanges with curl (log in, list), the list response
# written to one file. No parsing beyond extracting the token, no retries, no per-secret files.
#   curl_init.sh API_URL CLIENT_ID CLIENT_SECRET_FILE PROJECT_ID ENV OUT_FILE
set -eu
token=$(curl -fsS -X POST "$1/api/v1/auth/universal-auth/login" \
  -H 'Content-Type: application/json' \
  --data "{\"clientId\":\"$2\",\"clientSecret\":\"$(cat "$3")\"}" \
  | sed -n 's/.*"accessToken":"\([^"]*\)".*/\1/p')
curl -fsS -o "$6" -H "Authorization: Bearer $token" \
  "$1/api/v3/secrets/raw?workspaceId=$4&environment=$5&secretPath=/&expandSecretReferences=true&include_imports=true"

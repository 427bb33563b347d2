//! Go templates (ESO's `target.template.data`, the Infisical agent's templates) translated to our
//! minijinja templates, for the forms people write; anything else is refused with its line.
//!
//! Whitespace is kept exactly: Go keeps the text around an action unless `{{-`/`-}}` trims it,
//! while our templates drop the newline after a block tag, so every block tag is written with
//! `+%}` (keep) or `-%}` (trim, as the Go action did).

/// Which program the template was written for: what `.` is at the top.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// ESO: `.` is the map of secrets, `.KEY` one value.
    Eso,
    /// The Infisical agent: nothing at the top; `listSecrets` and `getSecretByName` fetch.
    Agent,
}

/// A folder the agent's template reads: `listSecrets "project-id" "env" "/path" {opts}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// The project: an id (`listSecrets`, `getSecretByName`) or a slug.
    pub project: String,
    /// Whether `project` is a slug (`listSecretsByProjectSlug`).
    pub by_slug: bool,
    /// The environment slug.
    pub environment: String,
    /// The folder.
    pub path: String,
    /// `{"recursive": true}`.
    pub recursive: bool,
    /// `{"expandSecretReferences": false}` turns it off.
    pub expand: bool,
}

/// What a template needs from the sources.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Translated {
    /// The minijinja template.
    pub text: String,
    /// The folders it reads (agent), with the keys it asks for by name.
    pub scopes: Vec<(Scope, Vec<String>)>,
    /// Whether it lists every secret of a scope (so the sources must hold nothing else).
    pub lists: bool,
    /// The keys it asks for by name (ESO).
    pub keys: Vec<String>,
}

/// A construct that cannot be translated.
#[derive(Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// The line in the template, from 1.
    pub line: usize,
    /// The action as written, e.g. `{{ .db | quote }}`.
    pub construct: String,
    /// Why.
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Str(String),
    Num(String),
    Ident(String),
    /// `.`, `.Key`.
    Field(String),
    Pipe,
    Open,
    Close,
}

/// What `.` is at some point of the template.
#[derive(Clone, Debug)]
enum Dot {
    Root,
    List(Scope),
    Item,
    Secret(Scope, String),
}

/// What an open block does at its `end`.
enum Frame {
    /// `with`: `.` changes, nothing written.
    With(Dot),
    /// `range`: `{% endfor %}`.
    Range,
    /// `if`: `{% endif %}`.
    If,
}

/// A value an expression evaluates to.
enum Expr {
    Jinja(String),
    List(Scope),
    Secret(Scope, String),
}

struct Translator {
    dialect: Dialect,
    frames: Vec<Frame>,
    out: Translated,
}

/// Translates `source` (a Go template) for `dialect`.
pub fn translate(source: &str, dialect: Dialect) -> Result<Translated, Unsupported> {
    let mut t = Translator {
        dialect,
        frames: Vec::new(),
        out: Translated::default(),
    };
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        t.text(&rest[..start]);
        let line = 1 + source[..source.len() - rest.len() + start]
            .matches('\n')
            .count();
        let action = &rest[start..];
        let end = action_end(action).ok_or_else(|| Unsupported {
            line,
            construct: action.lines().next().unwrap_or("").to_owned(),
            reason: "an action without its closing }}".into(),
        })?;
        let construct = &action[..end];
        t.action(construct).map_err(|reason| Unsupported {
            line,
            construct: construct.to_owned(),
            reason,
        })?;
        rest = &action[end..];
    }
    t.text(rest);
    if !t.frames.is_empty() {
        return Err(Unsupported {
            line: 1 + source.matches('\n').count(),
            construct: "{{ end }}".into(),
            reason: "a range, with or if is never closed".into(),
        });
    }
    Ok(t.out)
}

/// The length of the action at the start of `text` (`{{` … `}}`, quotes skipped).
fn action_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 2;
    let mut quote = None;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            (Some(b'"'), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'`') => quote = Some(bytes[i]),
            (None, b'}') if bytes.get(i + 1) == Some(&b'}') => return Some(i + 2),
            (None, _) => {}
        }
        i += 1;
    }
    None
}

impl Translator {
    /// Text between actions; Jinja's own openers are written as strings.
    fn text(&mut self, text: &str) {
        self.out.text.push_str(
            &text
                .replace("{%", "{{ \"{%\" }}")
                .replace("{#", "{{ \"{#\" }}"),
        );
    }

    fn dot(&self) -> Dot {
        self.frames
            .iter()
            .rev()
            .find_map(|frame| match frame {
                Frame::With(dot) => Some(dot.clone()),
                Frame::Range => Some(Dot::Item),
                Frame::If => None,
            })
            .unwrap_or(Dot::Root)
    }

    fn action(&mut self, construct: &str) -> Result<(), String> {
        let inner = &construct[2..construct.len() - 2];
        let (ltrim, inner) = match inner.strip_prefix('-') {
            Some(rest) if rest.starts_with(char::is_whitespace) => (true, rest),
            _ => (false, inner),
        };
        let (rtrim, inner) = match inner.strip_suffix('-') {
            Some(rest) if rest.ends_with(char::is_whitespace) => (true, rest),
            _ => (false, inner),
        };
        let inner = inner.trim();
        let block = |stmt: &str| {
            format!(
                "{{%{} {stmt} {}%}}",
                if ltrim { "-" } else { "" },
                if rtrim { "-" } else { "+" }
            )
        };
        // Nothing to write, but the trimming must still happen.
        let nothing = match (ltrim, rtrim) {
            (false, false) => String::new(),
            (l, r) => format!(
                "{{{{{} \"\" {}}}}}",
                if l { "-" } else { "" },
                if r { "-" } else { "" }
            ),
        };
        if inner.starts_with("/*") && inner.ends_with("*/") {
            self.out.text.push_str(&nothing);
            return Ok(());
        }
        let tokens = tokenize(inner)?;
        let (keyword, rest) = match tokens.first() {
            Some(Tok::Ident(word)) => (word.as_str(), &tokens[1..]),
            _ => ("", &tokens[..]),
        };
        let written = match keyword {
            "end" if rest.is_empty() => match self.frames.pop() {
                Some(Frame::With(_)) => nothing,
                Some(Frame::Range) => block("endfor"),
                Some(Frame::If) => block("endif"),
                None => return Err("an end without its range, with or if".into()),
            },
            "else" if rest.is_empty() => match self.frames.last() {
                Some(Frame::If) => block("else"),
                _ => return Err("else is translated only inside if".into()),
            },
            "with" => {
                let dot = match self.pipeline(rest)? {
                    Expr::List(scope) => Dot::List(scope),
                    Expr::Secret(scope, key) => Dot::Secret(scope, key),
                    Expr::Jinja(_) => {
                        return Err("with is translated only around listSecrets, \
                                    listSecretsByProjectSlug or getSecretByName"
                            .into())
                    }
                };
                self.frames.push(Frame::With(dot));
                nothing
            }
            "range" => {
                match self.pipeline(rest)? {
                    Expr::List(_) => {}
                    _ => return Err("range is translated only over a list of secrets".into()),
                }
                self.out.lists = true;
                self.frames.push(Frame::Range);
                block("for key, value in secrets|items")
            }
            "if" => {
                let Expr::Jinja(condition) = self.pipeline(rest)? else {
                    return Err("if is translated only for a value".into());
                };
                self.frames.push(Frame::If);
                block(&format!("if {condition}"))
            }
            _ => {
                let Expr::Jinja(value) = self.pipeline(&tokens)? else {
                    return Err("a list of secrets or a secret object cannot be printed; \
                                use .Key or .Value"
                        .into());
                };
                format!(
                    "{{{{{} {value} {}}}}}",
                    if ltrim { "-" } else { "" },
                    if rtrim { "-" } else { "" }
                )
            }
        };
        self.out.text.push_str(&written);
        Ok(())
    }

    /// `COMMAND | FILTER ARGS | …`.
    fn pipeline(&mut self, tokens: &[Tok]) -> Result<Expr, String> {
        let mut commands = tokens.split(|t| *t == Tok::Pipe);
        let first = commands.next().unwrap_or(&[]);
        let mut value = self.command(first)?;
        for filter in commands {
            let Expr::Jinja(text) = value else {
                return Err("only a value can go through a function".into());
            };
            value = Expr::Jinja(apply(filter, &text)?);
        }
        Ok(value)
    }

    fn command(&mut self, tokens: &[Tok]) -> Result<Expr, String> {
        match tokens {
            [] => Err("an empty action".into()),
            [Tok::Str(text)] => Ok(Expr::Jinja(jinja_string(text))),
            [Tok::Field(field)] => self.field(field),
            [Tok::Open, inner @ .., Tok::Close, Tok::Field(field)] => {
                match self.pipeline(inner)? {
                    Expr::Secret(scope, key) => self.member(&Dot::Secret(scope, key), field),
                    _ => Err("only (getSecretByName …).Key or .Value is translated".into()),
                }
            }
            [Tok::Open, inner @ .., Tok::Close] => self.pipeline(inner),
            [Tok::Ident(name), args @ ..] => self.call(name, args),
            _ => Err("not a form this converter translates".into()),
        }
    }

    /// `.`, `.Key`, `.Value`, or ESO's `.KEY`.
    fn field(&mut self, field: &str) -> Result<Expr, String> {
        let dot = self.dot();
        if field == "." {
            return match dot {
                Dot::List(scope) => Ok(Expr::List(scope)),
                Dot::Secret(scope, key) => Ok(Expr::Secret(scope, key)),
                Dot::Item => Err("use .Key or .Value of a listed secret".into()),
                Dot::Root => Err(match self.dialect {
                    Dialect::Eso => "the whole map of secrets is not translated; name a key (.KEY)",
                    Dialect::Agent => "the agent's template has no data outside with or range",
                }
                .into()),
            };
        }
        self.member(&dot, field)
    }

    fn member(&mut self, dot: &Dot, field: &str) -> Result<Expr, String> {
        let name = &field[1..];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err("only a single field (.Key, .Value or .KEY) is translated".into());
        }
        match (dot, name) {
            (Dot::Root, key) if self.dialect == Dialect::Eso => {
                if !self.out.keys.iter().any(|k| k == key) {
                    self.out.keys.push(key.to_owned());
                }
                Ok(Expr::Jinja(format!("secret({})", jinja_string(key))))
            }
            (Dot::Item, "Key") => Ok(Expr::Jinja("key".into())),
            (Dot::Item, "Value") => Ok(Expr::Jinja("value".into())),
            (Dot::Secret(_, key), "Key") => Ok(Expr::Jinja(jinja_string(key))),
            (Dot::Secret(_, key), "Value") => {
                Ok(Expr::Jinja(format!("secret({})", jinja_string(key))))
            }
            (Dot::Item | Dot::Secret(..), _) => Err(format!(
                ".{name}: only .Key and .Value of a secret are translated"
            )),
            _ => Err(format!(".{name}: there is no such value here")),
        }
    }

    fn call(&mut self, name: &str, args: &[Tok]) -> Result<Expr, String> {
        let strings: Option<Vec<&str>> = args
            .iter()
            .map(|t| match t {
                Tok::Str(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        let agent = self.dialect == Dialect::Agent;
        match (name, strings.as_deref()) {
            (
                "listSecrets" | "secret" | "listSecretsByProjectSlug",
                Some([p, e, path, opts @ ..]),
            ) if agent && opts.len() <= 1 => {
                let scope = scope(p, e, path, opts.first().copied(), name)?;
                self.use_scope(&scope, None);
                Ok(Expr::List(scope))
            }
            ("getSecretByName", Some([p, e, path, key])) if agent => {
                let scope = scope(p, e, path, None, name)?;
                self.use_scope(&scope, Some(key));
                Ok(Expr::Secret(scope, (*key).to_owned()))
            }
            _ => {
                // A function of the value, written before it: `b64enc .Value`.
                let (value, filter_args) = args
                    .split_last()
                    .ok_or_else(|| format!("{name}: not a function this converter translates"))?;
                let Expr::Jinja(value) = self.command(std::slice::from_ref(value))? else {
                    return Err(format!("{name}: only a value can go through a function"));
                };
                let mut filter = vec![Tok::Ident(name.to_owned())];
                filter.extend(filter_args.iter().cloned());
                Ok(Expr::Jinja(apply(&filter, &value)?))
            }
        }
    }

    fn use_scope(&mut self, scope: &Scope, key: Option<&str>) {
        let position = self.out.scopes.iter().position(|(s, _)| s == scope);
        let index = position.unwrap_or_else(|| {
            self.out.scopes.push((scope.clone(), Vec::new()));
            self.out.scopes.len() - 1
        });
        if let Some(key) = key {
            let keys = &mut self.out.scopes[index].1;
            if !keys.iter().any(|k| k == key) {
                keys.push(key.to_owned());
            }
        }
    }
}

fn scope(
    project: &str,
    environment: &str,
    path: &str,
    options: Option<&str>,
    function: &str,
) -> Result<Scope, String> {
    let mut scope = Scope {
        project: project.to_owned(),
        by_slug: function == "listSecretsByProjectSlug",
        environment: environment.to_owned(),
        path: path.to_owned(),
        recursive: false,
        expand: true,
    };
    if let Some(options) = options {
        let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_str(options)
            .map_err(|_| format!("{function}: the options must be a JSON object"))?;
        for (key, value) in parsed {
            match (key.as_str(), value.as_bool()) {
                ("recursive", Some(on)) => scope.recursive = on,
                ("expandSecretReferences", Some(on)) => scope.expand = on,
                _ => {
                    return Err(format!(
                        "{function}: option {key:?} is not translated (recursive and \
                         expandSecretReferences are, as true or false)"
                    ))
                }
            }
        }
    }
    Ok(scope)
}

/// A sprig function applied to `value`: `b64enc`, `b64dec`, `toJson`, `indent N`, `nindent N`.
fn apply(filter: &[Tok], value: &str) -> Result<String, String> {
    Ok(match filter {
        [Tok::Ident(f)] if f == "b64enc" => format!("{value} | b64encode"),
        [Tok::Ident(f)] if f == "b64dec" => format!("{value} | b64decode"),
        [Tok::Ident(f)] if f == "toJson" => format!("{value} | tojson"),
        [Tok::Ident(f), Tok::Num(n)] if f == "indent" => {
            format!("{value} | indent({n}, first=true, blank=true)")
        }
        [Tok::Ident(f), Tok::Num(n)] if f == "nindent" => {
            format!("\"\\n\" ~ ({value} | indent({n}, first=true, blank=true))")
        }
        [Tok::Ident(f), ..] => {
            return Err(format!(
                "{f}: not translated (translated: b64enc, b64dec, toJson, indent N, nindent N)"
            ))
        }
        _ => return Err("only a function name can follow |".into()),
    })
}

/// A string literal our templates read back as `text`.
fn jinja_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            '|' => Tok::Pipe,
            '(' => Tok::Open,
            ')' => Tok::Close,
            '"' => {
                let mut end = None;
                let mut escaped = false;
                for (i, c) in chars.by_ref() {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or("a string without its closing quote")?;
                let literal: String = serde_json::from_str(&text[start..=end])
                    .map_err(|_| "a string with escapes this converter does not read")?;
                Tok::Str(literal)
            }
            '`' => {
                let end = chars
                    .by_ref()
                    .find(|(_, c)| *c == '`')
                    .ok_or("a raw string without its closing `")?
                    .0;
                Tok::Str(text[start + 1..end].to_owned())
            }
            _ => {
                let mut end = start + c.len_utf8();
                while let Some(&(i, c)) = chars.peek() {
                    if c.is_whitespace() || "|()\"`".contains(c) {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                let word = &text[start..end];
                if word.starts_with('.') {
                    Tok::Field(word.to_owned())
                } else if word.chars().all(|c| c.is_ascii_digit()) {
                    Tok::Num(word.to_owned())
                } else if word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    Tok::Ident(word.to_owned())
                } else {
                    return Err(format!("{word}: not a form this converter translates"));
                }
            }
        };
        tokens.push(token);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eso(text: &str) -> String {
        translate(text, Dialect::Eso).expect("translates").text
    }

    fn refused(text: &str, dialect: Dialect) -> Unsupported {
        translate(text, dialect).expect_err("refused")
    }

    #[test]
    fn eso_keys_and_b64enc() {
        let t = translate(
            "user: {{ .DB_USER }}\npass: {{ .DB_PASSWORD | b64enc }}\n",
            Dialect::Eso,
        )
        .expect("translates");
        assert_eq!(
            t.text,
            "user: {{ secret(\"DB_USER\") }}\npass: {{ secret(\"DB_PASSWORD\") | b64encode }}\n"
        );
        assert_eq!(t.keys, ["DB_USER", "DB_PASSWORD"]);
        assert_eq!(eso("{{- .a -}}\n"), "{{- secret(\"a\") -}}\n");
        assert_eq!(eso("{% raw %}{# x"), "{{ \"{%\" }} raw %}{{ \"{#\" }} x");
    }

    #[test]
    fn refusals_name_the_line_and_construct() {
        let error = refused("a: 1\nb: {{ .x | quote }}\n", Dialect::Eso);
        assert_eq!(error.line, 2);
        assert_eq!(error.construct, "{{ .x | quote }}");
        assert!(
            error.reason.starts_with("quote: not translated"),
            "{error:?}"
        );
        let error = refused("{{ $x := .a }}", Dialect::Eso);
        assert!(error.reason.contains("$x"), "{error:?}");
        let error = refused("\n\n{{ range .items }}{{ end }}", Dialect::Eso);
        assert_eq!(error.line, 3);
        let error = refused("{{ .a.b }}", Dialect::Eso);
        assert!(error.reason.contains("single field"), "{error:?}");
        let error = refused("{{ if .a }}", Dialect::Eso);
        assert!(error.reason.contains("never closed"), "{error:?}");
        let error = refused("{{ .Key }}", Dialect::Agent);
        assert!(error.reason.contains("no such value"), "{error:?}");
    }

    #[test]
    fn agent_listing_and_by_name() {
        let t = translate(
            "{{- with listSecrets \"6553ccb2\" \"dev\" \"/\" `{\"recursive\": true}` }}\n{{- range . }}\n{{ .Key }}={{ .Value }}\n{{- end }}\n{{- end }}\n",
            Dialect::Agent,
        )
        .expect("translates");
        assert_eq!(
            t.text,
            "{{- \"\" }}\n{%- for key, value in secrets|items +%}\n{{ key }}={{ value }}\n{%- endfor +%}\n{{- \"\" }}\n"
        );
        assert!(t.lists);
        assert_eq!(t.scopes.len(), 1);
        assert!(t.scopes[0].0.recursive);

        let t = translate(
            "{{ with getSecretByName \"p\" \"prod\" \"/db\" \"PASSWORD\" }}{{ if .Value }}pw={{ .Value | b64enc }}{{ end }}{{ end }}\nkey={{ (getSecretByName \"p\" \"prod\" \"/db\" \"USER\").Value }}\n",
            Dialect::Agent,
        )
        .expect("translates");
        assert_eq!(
            t.text,
            "{% if secret(\"PASSWORD\") +%}pw={{ secret(\"PASSWORD\") | b64encode }}{% endif +%}\nkey={{ secret(\"USER\") }}\n"
        );
        assert!(!t.lists);
        assert_eq!(t.scopes[0].1, ["PASSWORD", "USER"]);

        let t = translate(
            "{{ range listSecretsByProjectSlug \"my-app\" \"dev\" \"/\" }}{{ .Key }}: {{ toJson .Value }}\n{{ end }}",
            Dialect::Agent,
        )
        .expect("translates");
        assert!(t.scopes[0].0.by_slug);
        assert!(t.text.contains("{{ value | tojson }}"), "{}", t.text);
    }

    #[test]
    fn translations_render_like_go() {
        use crate::secrets::{SecretSet, SecretValue};
        let mut secrets = SecretSet::new();
        secrets.insert("A".into(), SecretValue::from("1"));
        secrets.insert("B".into(), SecretValue::from("two\nlines"));
        let render = |go: &str| {
            let text = translate(go, Dialect::Agent).expect("translates").text;
            let template = crate::sink::template::Template::parse("t", &text).expect("parses");
            String::from_utf8(template.render(&secrets).expect("renders").content.to_vec())
                .expect("utf-8")
        };
        // What Go's text/template prints for the same secrets.
        assert_eq!(
            render("{{ with listSecrets \"p\" \"dev\" \"/\" }}\n{{ range . }}\n{{ .Key }}={{ .Value }}\n{{ end }}\n{{ end }}\n"),
            "\n\nA=1\n\nB=two\nlines\n\n\n"
        );
        assert_eq!(
            render("{{- with listSecrets \"p\" \"dev\" \"/\" }}\n{{- range . }}\n{{ .Key }}={{ .Value }}\n{{- end }}\n{{- end }}\n"),
            "\nA=1\nB=two\nlines\n"
        );
        assert_eq!(
            render("b: {{- (getSecretByName \"p\" \"dev\" \"/\" \"B\").Value | nindent 2 }}\n"),
            "b:\n  two\n  lines\n"
        );
    }
}

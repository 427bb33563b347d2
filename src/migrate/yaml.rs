//! The YAML that `migrate` reads and writes: Kubernetes manifests and agent configurations in,
//! configuration files and manifests out.
//!
//! The configuration file's reader (`config::file`) takes one document and refuses what a
//! configuration does not use; manifests come as streams of documents with tags and keys of
//! every kind, and a refusal must name the line of what it refuses. So this is a second, looser
//! reader over the same event parser (`saphyr_parser`), keeping each node's line, and a small
//! writer whose output reads back the same under YAML 1.1 (kubectl, PyYAML) and 1.2.

use saphyr_parser::{Event, Parser, ScalarStyle};

/// Past this many nodes (aliases counted at every use) the input is refused.
const MAX_NODES: usize = 200_000;

/// One node and the line (from 1) where its content starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Its line in the input (0 for nodes built here).
    pub line: usize,
}

/// A YAML value. Scalars keep their text; `plain` is false for quoted and block scalars.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar as written.
    Scalar {
        /// The text.
        text: String,
        /// Written without quotes (so `true` or `42` may mean a boolean or a number).
        plain: bool,
    },
    /// A list.
    Seq(Vec<Node>),
    /// A mapping, in the input's order.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// A string scalar built here.
    pub fn str(text: impl Into<String>) -> Node {
        Node {
            value: Value::Scalar {
                text: text.into(),
                plain: false,
            },
            line: 0,
        }
    }

    /// A boolean or a number built here, written as is.
    pub fn plain(text: impl ToString) -> Node {
        Node {
            value: Value::Scalar {
                text: text.to_string(),
                plain: true,
            },
            line: 0,
        }
    }

    /// A mapping built here.
    pub fn map(entries: Vec<(&str, Node)>) -> Node {
        let entries = entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        Node {
            value: Value::Map(entries),
            line: 0,
        }
    }

    /// A list built here.
    pub fn seq(items: Vec<Node>) -> Node {
        Node {
            value: Value::Seq(items),
            line: 0,
        }
    }

    /// The value under `key` of a mapping (`None`: absent, null, or not a mapping).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .filter(|v| !v.is_null()),
            _ => None,
        }
    }

    /// The entries of a mapping (none for anything else).
    pub fn entries(&self) -> &[(String, Node)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    /// The items of a list (none for anything else).
    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    /// The text of a scalar that is not null.
    pub fn text(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    /// Whether this is `true` (plain), `Some(false)` for `false`, `None` for anything else.
    pub fn boolean(&self) -> Option<bool> {
        match &self.value {
            Value::Scalar { text, plain: true } => match text.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// `~`, `null` or nothing.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// Adds an entry to a mapping.
    pub fn push(&mut self, key: &str, value: Node) {
        if let Value::Map(entries) = &mut self.value {
            entries.push((key.to_owned(), value));
        }
    }

    fn size(&self) -> usize {
        match &self.value {
            Value::Scalar { .. } => 1,
            Value::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Value::Map(entries) => 1 + entries.iter().map(|(_, n)| 1 + n.size()).sum::<usize>(),
        }
    }
}

enum Open {
    Seq(Vec<Node>, usize, usize),
    Map(Vec<(String, Node)>, Option<String>, usize, usize),
}

/// Reads every document of a YAML stream (empty documents are left out). Tags are ignored;
/// a key given twice is an error. Errors are `(line, reason)`.
pub fn read_documents(text: &str) -> Result<Vec<Node>, (usize, String)> {
    let mut documents = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    let mut anchors: std::collections::HashMap<usize, Node> = Default::default();
    let mut nodes = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| (e.marker().line(), e.info().to_owned()))?;
        let line = span.start.line();
        let (node, anchor) = match event {
            Event::SequenceStart(anchor, _) => {
                open.push(Open::Seq(Vec::new(), anchor, line));
                continue;
            }
            Event::MappingStart(anchor, _) => {
                open.push(Open::Map(Vec::new(), None, anchor, line));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match open.pop() {
                Some(Open::Seq(items, anchor, line)) => (
                    Node {
                        value: Value::Seq(items),
                        line,
                    },
                    anchor,
                ),
                Some(Open::Map(entries, _, anchor, line)) => (
                    Node {
                        value: Value::Map(entries),
                        line,
                    },
                    anchor,
                ),
                None => return Err((line, "unbalanced end of a list or mapping".into())),
            },
            Event::Scalar(value, style, anchor, tag) => {
                let is_str = tag.is_some_and(|tag| tag.suffix == "str");
                let node = Node {
                    value: Value::Scalar {
                        text: value.into_owned(),
                        plain: style == ScalarStyle::Plain && !is_str,
                    },
                    line,
                };
                (node, anchor)
            }
            Event::Alias(id) => {
                let node = anchors
                    .get(&id)
                    .cloned()
                    .ok_or((line, "an alias (*name) before its anchor".to_owned()))?;
                nodes += node.size();
                (node, 0)
            }
            _ => continue,
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err((line, format!("too large: more than {MAX_NODES} values")));
        }
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match open.last_mut() {
            None => {
                if !node.is_null() {
                    documents.push(node);
                }
            }
            Some(Open::Seq(items, ..)) => items.push(node),
            Some(Open::Map(entries, key, ..)) => match key.take() {
                Some(key) => entries.push((key, node)),
                None => {
                    let Value::Scalar { text, .. } = node.value else {
                        return Err((line, "a key must be a name, not a list or mapping".into()));
                    };
                    if entries.iter().any(|(existing, _)| *existing == text) {
                        return Err((line, format!("key {text} given twice")));
                    }
                    *key = Some(text);
                }
            },
        }
    }
    Ok(documents)
}

/// Writes a node as a YAML document (block style, two-space indent).
pub fn write(node: &Node) -> String {
    let mut out = String::new();
    match &node.value {
        Value::Map(entries) if !entries.is_empty() => write_map(&mut out, entries, 0),
        Value::Seq(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        _ => {
            out.push_str(&scalar(node, 0, false));
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, entries: &[(String, Node)], indent: usize) {
    for (index, (key, value)) in entries.iter().enumerate() {
        if index > 0 {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&quote(key));
        out.push(':');
        write_value(out, value, indent, true);
    }
}

fn write_seq(out: &mut String, items: &[Node], indent: usize) {
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push_str(&" ".repeat(indent));
        }
        out.push('-');
        match &item.value {
            Value::Map(entries) if !entries.is_empty() => {
                out.push(' ');
                write_map(out, entries, indent + 2);
            }
            _ => write_value(out, item, indent, false),
        }
    }
}

/// After `key:` or `-`: a scalar on the same line, a collection on the next ones.
fn write_value(out: &mut String, node: &Node, indent: usize, in_map: bool) {
    match &node.value {
        Value::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            out.push_str(&" ".repeat(indent + 2));
            write_map(out, entries, indent + 2);
        }
        Value::Seq(items) if !items.is_empty() => {
            out.push('\n');
            out.push_str(&" ".repeat(indent + 2));
            write_seq(out, items, indent + 2);
        }
        _ => {
            out.push(' ');
            out.push_str(&scalar(node, indent, in_map));
            out.push('\n');
        }
    }
}

fn scalar(node: &Node, indent: usize, block_allowed: bool) -> String {
    match &node.value {
        Value::Map(_) => "{}".into(),
        Value::Seq(_) => "[]".into(),
        Value::Scalar { text, plain: true } => text.clone(),
        Value::Scalar { text, plain: false } => {
            let printable = text
                .chars()
                .all(|c| c == '\n' || c == '\t' || !c.is_control());
            if block_allowed && printable && text.contains('\n') {
                block(text, indent)
            } else {
                quote(text)
            }
        }
    }
}

/// A literal block scalar (`|`), its content indented two spaces past `indent`.
fn block(text: &str, indent: usize) -> String {
    let chomp = if !text.ends_with('\n') {
        "-"
    } else if text.ends_with("\n\n") {
        "+"
    } else {
        ""
    };
    // The content's indentation is explicit when its first line would not show it.
    let explicit = if text.starts_with([' ', '\n']) {
        "2"
    } else {
        ""
    };
    let pad = " ".repeat(indent + 2);
    let mut out = format!("|{explicit}{chomp}");
    let body = text.strip_suffix('\n').unwrap_or(text);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    out
}

/// A string as a plain scalar when every YAML reader reads it back as the same string, else
/// double-quoted (JSON's escapes are YAML's).
pub fn quote(text: &str) -> String {
    let safe_char = |c: char| c.is_ascii_alphanumeric() || "-_./@".contains(c);
    let first_ok = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '_');
    let word = text.to_ascii_lowercase();
    let special = matches!(
        word.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null"
    );
    if first_ok && !special && text.chars().all(safe_char) {
        text.to_owned()
    } else {
        serde_json::Value::String(text.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_document_with_lines() {
        let docs = read_documents("a: 1\nb:\n  c: |\n    x\n    y\n---\n---\n- q\n- 'r'\n# end\n")
            .expect("reads");
        assert_eq!(docs.len(), 2);
        let c = docs[0].get("b").and_then(|b| b.get("c")).expect("c");
        assert_eq!(c.text(), Some("x\ny\n"));
        assert_eq!(c.line, 4);
        assert_eq!(docs[1].items()[1].text(), Some("r"));
        assert_eq!(docs[1].items()[1].line, 9);
        assert_eq!(
            read_documents("a: 1\na: 2\n").unwrap_err(),
            (2, "key a given twice".to_owned())
        );
    }

    #[test]
    fn writes_what_reads_back_the_same() {
        let node = Node::map(vec![
            ("api-url", Node::str("https://infisical.example.com")),
            ("mode", Node::str("0440")),
            ("on", Node::str("yes")),
            ("n", Node::plain(3)),
            ("empty", Node::map(vec![])),
            (
                "list",
                Node::seq(vec![
                    Node::map(vec![("a", Node::str("x: y")), ("b", Node::plain(true))]),
                    Node::str("plain"),
                ]),
            ),
            ("content", Node::str("line 1\n  line 2\n")),
            ("indented", Node::str("  starts with spaces")),
            ("lead", Node::str("\n\nx\n\n")),
            ("tab\tkey", Node::str("a\r\nb")),
        ]);
        let text = write(&node);
        assert!(text.contains("mode: \"0440\"\n"), "{text}");
        assert!(
            text.contains("api-url: \"https://infisical.example.com\"\n"),
            "{text}"
        );
        let back = read_documents(&text).expect("reads back");
        for ((key, got), (_, want)) in back[0].entries().iter().zip(node.entries()) {
            assert_eq!(strip_lines(got), strip_lines(want), "{key}: {text}");
        }
    }

    fn strip_lines(node: &Node) -> Node {
        let value = match &node.value {
            // Only the text matters: a string may come back plain.
            Value::Scalar { text, .. } => Value::Scalar {
                text: text.clone(),
                plain: false,
            },
            Value::Seq(items) => Value::Seq(items.iter().map(strip_lines).collect()),
            Value::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), strip_lines(v)))
                    .collect(),
            ),
        };
        Node { value, line: 0 }
    }
}

//! Reading YAML/JSON documents into [`Value`]s within explicit [`Limits`],
//! and finding the `line:column` of a path afterwards.
//!
//! Parsing is serde_yaml 0.9 driven by our own `DeserializeSeed`, which keeps
//! key order, applies YAML merge keys (`<<`) as PyYAML does, rejects
//! application tags (`!foo`) as Heat's safe loader does, and counts nodes and
//! depth as it builds, so an alias bomb or a deeply nested document stops
//! with a clear error before it costs memory.
//!
//! serde_yaml reports positions only for its own syntax errors, so positions
//! of semantic errors come from a second, lazy pass: [`PositionIndex`] walks
//! the text's YAML events with `saphyr-parser` (a small event-level parser)
//! and records where every path starts. It runs only when an error needs a
//! position, so the success path pays nothing for it.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::{Error, ErrorKind, Path, Position, Segment};

/// Bounds on what a document may cost to read. Every document (template,
/// environment, nested template, `files` entry parsed as a template) is
/// checked against them before and while it is parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest document in bytes. Default 524288, Heat's `max_template_size`.
    pub max_bytes: usize,
    /// Deepest nesting of mappings and sequences. Default 100 (serde_yaml
    /// itself stops at 128).
    pub max_depth: usize,
    /// Most nodes after YAML aliases are expanded. Default 500000, about one
    /// node per byte of the largest document; an alias bomb hits it at once.
    pub max_nodes: usize,
    /// Deepest chain of nested templates (`type: x.yaml`). Default 5, Heat's
    /// `max_nested_stack_depth`.
    pub max_nested_depth: usize,
    /// Most resources in one template. Default 1000, Heat's
    /// `max_resources_per_stack`.
    pub max_resources: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 524_288,
            max_depth: 100,
            max_nodes: 500_000,
            max_nested_depth: 5,
            max_resources: 1000,
        }
    }
}

/// Reads a YAML or JSON text into a value, within `limits`. `what` names the
/// document in messages (`template`, `environment`).
pub fn load(text: &str, limits: &Limits) -> Result<Value, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.len() > limits.max_bytes {
        return Err(Error::new(
            ErrorKind::RequestLimitExceeded,
            format!(
                "Request limit exceeded: Template size ({} bytes) exceeds maximum allowed size ({} bytes).",
                text.len(),
                limits.max_bytes
            ),
            Path::root(),
        ));
    }
    check_flow_depth(text, limits)?;
    let budget = Budget {
        nodes: std::cell::Cell::new(0),
        limits,
    };
    let de = serde_yaml::Deserializer::from_str(text);
    match (Node {
        budget: &budget,
        depth: 0,
    })
    .deserialize(de)
    {
        Ok(v) => Ok(v),
        Err(e) => Err(yaml_error(e, limits)),
    }
}

/// Documents with more flow collections (`[`, `{`) than this get their
/// nesting depth checked before libyaml sees them.
const FLOW_CHECK_THRESHOLD: usize = 500;

/// libyaml (inside serde_yaml) takes time quadratic in the depth of nested
/// flow collections (100 000 nested `[` cost minutes), all before
/// serde_yaml's own recursion limit applies. A document with many flow
/// collections is therefore walked first with saphyr-parser's streaming
/// events, which stops at the first level past the limit.
fn check_flow_depth(text: &str, limits: &Limits) -> Result<(), Error> {
    let openers = text.bytes().filter(|b| *b == b'[' || *b == b'{').count();
    if openers <= FLOW_CHECK_THRESHOLD.max(limits.max_depth) {
        return Ok(());
    }
    use saphyr_parser::{Event, Parser};
    let too_deep = |line: usize, col: usize| {
        let mut e = Error::new(
            ErrorKind::RequestLimitExceeded,
            format!(
                "Request limit exceeded: the document is nested more than {} levels deep",
                limits.max_depth
            ),
            Path::root(),
        );
        e.position = Some(Position {
            line,
            column: col + 1,
        });
        e
    };
    let mut depth = 0usize;
    let mut parser = Parser::new_from_str(text);
    while let Some(ev) = parser.next_event() {
        match ev {
            Ok((Event::SequenceStart(..) | Event::MappingStart(..), span)) => {
                depth += 1;
                if depth > limits.max_depth {
                    return Err(too_deep(span.start.line(), span.start.col()));
                }
            }
            Ok((Event::SequenceEnd | Event::MappingEnd, _)) => depth = depth.saturating_sub(1),
            Ok(_) => {}
            Err(e) => {
                let m = e.marker();
                if e.info().contains("recursion limit") {
                    return Err(too_deep(m.line(), m.col()));
                }
                // libyaml might read what saphyr cannot, but with this many
                // flow collections it could also take minutes: refuse.
                let mut err = Error::new(
                    ErrorKind::HttpBadRequest,
                    format!(
                        "Error parsing template: {} at line {} column {}",
                        e.info(),
                        m.line(),
                        m.col() + 1
                    ),
                    Path::root(),
                );
                err.position = Some(Position {
                    line: m.line(),
                    column: m.col() + 1,
                });
                return Err(err);
            }
        }
    }
    Ok(())
}

fn yaml_error(e: serde_yaml::Error, limits: &Limits) -> Error {
    let position = e.location().map(|l| Position {
        line: l.line(),
        column: l.column(),
    });
    let text = e.to_string();
    let (kind, message) = if text.contains(LIMIT_MARK) {
        let msg = text
            .split(LIMIT_MARK)
            .nth(1)
            .unwrap_or("document too large")
            .split(" at line ")
            .next()
            .unwrap_or("")
            .to_string();
        (
            ErrorKind::RequestLimitExceeded,
            format!("Request limit exceeded: {msg}"),
        )
    } else if text.contains("recursion limit exceeded") {
        (
            ErrorKind::RequestLimitExceeded,
            format!(
                "Request limit exceeded: the document is nested more than {} levels deep",
                limits.max_depth
            ),
        )
    } else if text.contains("repetition limit exceeded") {
        (
            ErrorKind::RequestLimitExceeded,
            format!(
                "Request limit exceeded: YAML aliases expand to more than {} nodes",
                limits.max_nodes
            ),
        )
    } else {
        (
            ErrorKind::HttpBadRequest,
            format!("Error parsing template: {text}"),
        )
    };
    let mut err = Error::new(kind, message, Path::root());
    err.position = position;
    err
}

const LIMIT_MARK: &str = "\u{1}limit\u{1}";

struct Budget<'a> {
    nodes: std::cell::Cell<usize>,
    limits: &'a Limits,
}

impl Budget<'_> {
    fn count<E: de::Error>(&self) -> Result<(), E> {
        let n = self.nodes.get() + 1;
        self.nodes.set(n);
        if n > self.limits.max_nodes {
            return Err(E::custom(format_args!(
                "{LIMIT_MARK}the document expands to more than {} nodes (YAML aliases?)",
                self.limits.max_nodes
            )));
        }
        Ok(())
    }
}

struct Node<'a, 'b> {
    budget: &'a Budget<'b>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.budget.count()?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.budget.count()?;
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.budget.count()?;
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.budget.count()?;
        match Number::from_f64(v) {
            Some(n) => Ok(Value::Number(n)),
            None => Err(E::custom(
                "non-finite numbers (.inf, .nan) are not supported in templates",
            )),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.budget.count()?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.budget.count()?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.budget.count()?;
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.budget.count()?;
        let depth = self.enter::<A::Error>()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Node {
            budget: self.budget,
            depth,
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.budget.count()?;
        let depth = self.enter::<A::Error>()?;
        let mut out = Map::new();
        let mut merged: Vec<Map<String, Value>> = Vec::new();
        while let Some(k) = map.next_key_seed(Key {
            budget: self.budget,
            depth,
        })? {
            let v = map.next_value_seed(Node {
                budget: self.budget,
                depth,
            })?;
            if k == "<<" {
                // YAML merge key, as PyYAML's SafeLoader applies it.
                match v {
                    Value::Object(m) => merged.push(m),
                    Value::Array(items) => {
                        for item in items {
                            match item {
                                Value::Object(m) => merged.push(m),
                                _ => {
                                    return Err(de::Error::custom(
                                        "expected a mapping or list of mappings for merging",
                                    ))
                                }
                            }
                        }
                    }
                    _ => {
                        return Err(de::Error::custom(
                            "expected a mapping or list of mappings for merging",
                        ))
                    }
                }
                continue;
            }
            out.insert(k, v);
        }
        for m in merged {
            for (k, v) in m {
                out.entry(k).or_insert(v);
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, _variant): (String, A::Variant) = data.variant()?;
        Err(de::Error::custom(format_args!(
            "could not determine a constructor for the tag '!{tag}'"
        )))
    }
}

impl Node<'_, '_> {
    fn enter<E: de::Error>(&self) -> Result<usize, E> {
        let depth = self.depth + 1;
        if depth > self.budget.limits.max_depth {
            return Err(E::custom(format_args!(
                "{LIMIT_MARK}the document is nested more than {} levels deep",
                self.budget.limits.max_depth
            )));
        }
        Ok(depth)
    }
}

/// A mapping key: scalars become strings (`1: x` is key `"1"`, as Heat's
/// JSON round trip makes it).
struct Key<'a, 'b> {
    budget: &'a Budget<'b>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Key<'_, '_> {
    type Value = String;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        let v = Node {
            budget: self.budget,
            depth: self.depth,
        }
        .deserialize(d)?;
        match v {
            Value::String(s) => Ok(s),
            Value::Null => Ok("null".into()),
            Value::Bool(b) => Ok(if b { "True" } else { "False" }.into()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(de::Error::custom(
                "mapping keys must be scalars (strings, numbers or booleans)",
            )),
        }
    }
}

/// An open collection while [`PositionIndex::build`] walks the events: for
/// a mapping, whether the next scalar is a key and the current key; for a
/// sequence, the next index.
enum Frame {
    Map {
        expect_key: bool,
        key: Option<String>,
    },
    Seq {
        next: usize,
    },
}

/// The state of [`PositionIndex::build`]'s walk over the YAML events.
#[derive(Default)]
struct IndexWalk {
    map: HashMap<String, Position>,
    /// The open collections, each with its path.
    stack: Vec<(Frame, String)>,
    /// Inside a mapping key that is a collection (Heat templates never use
    /// them): skipped by depth.
    skip_depth: usize,
}

impl IndexWalk {
    /// Takes one event; false at the end of the document.
    fn event(&mut self, ev: saphyr_parser::Event<'_>, pos: Position) -> bool {
        use saphyr_parser::Event;
        if self.skip_depth > 0 {
            match ev {
                Event::MappingStart(..) | Event::SequenceStart(..) => self.skip_depth += 1,
                Event::MappingEnd | Event::SequenceEnd => self.skip_depth -= 1,
                _ => {}
            }
            return true;
        }
        // Is this event a key (in a mapping awaiting a key)?
        let is_key = matches!(
            self.stack.last(),
            Some((
                Frame::Map {
                    expect_key: true,
                    ..
                },
                _
            ))
        );
        if is_key {
            self.key(ev, pos);
            true
        } else {
            self.value(ev, pos)
        }
    }

    /// An event where a mapping awaits a key.
    fn key(&mut self, ev: saphyr_parser::Event<'_>, pos: Position) {
        use saphyr_parser::Event;
        match ev {
            Event::Scalar(s, ..) => {
                if let Some((Frame::Map { expect_key, key }, path)) = self.stack.last_mut() {
                    let p = child_path(path, &Segment::Key(s.to_string()));
                    self.map.entry(p).or_insert(pos);
                    *key = Some(s.to_string());
                    *expect_key = false;
                }
            }
            Event::MappingEnd => {
                self.stack.pop();
                self.advance();
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                self.skip_depth = 1;
                if let Some((Frame::Map { expect_key, key }, _)) = self.stack.last_mut() {
                    *expect_key = false;
                    *key = None;
                }
            }
            _ => {}
        }
    }

    /// A value: its path is the parent's path plus key or index. False at
    /// the end of the document.
    fn value(&mut self, ev: saphyr_parser::Event<'_>, pos: Position) -> bool {
        use saphyr_parser::Event;
        let value_path = match self.stack.last() {
            None => String::new(),
            Some((Frame::Map { key, .. }, path)) => match key {
                Some(k) => child_path(path, &Segment::Key(k.clone())),
                None => String::from("\u{0}"),
            },
            Some((Frame::Seq { next }, path)) => child_path(path, &Segment::Index(*next)),
        };
        match ev {
            Event::Scalar(..) | Event::Alias(..) => {
                if let Some((Frame::Seq { .. }, _)) = self.stack.last() {
                    self.map.entry(value_path).or_insert(pos);
                }
                self.advance();
            }
            Event::MappingStart(..) => {
                if let Some((Frame::Seq { .. }, _)) | None = self.stack.last() {
                    self.map.entry(value_path.clone()).or_insert(pos);
                }
                self.stack.push((
                    Frame::Map {
                        expect_key: true,
                        key: None,
                    },
                    value_path,
                ));
            }
            Event::SequenceStart(..) => {
                if let Some((Frame::Seq { .. }, _)) | None = self.stack.last() {
                    self.map.entry(value_path.clone()).or_insert(pos);
                }
                self.stack.push((Frame::Seq { next: 0 }, value_path));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.stack.pop();
                self.advance();
            }
            Event::DocumentEnd => return false,
            _ => {}
        }
        true
    }

    /// After a value: the mapping awaits its next key, the sequence its
    /// next index.
    fn advance(&mut self) {
        match self.stack.last_mut() {
            Some((Frame::Map { expect_key, key }, _)) => {
                *expect_key = true;
                *key = None;
            }
            Some((Frame::Seq { next }, _)) => *next += 1,
            None => {}
        }
    }
}

/// A child's dotted path (`a.b`, `a[0]`).
fn child_path(parent: &str, seg: &Segment) -> String {
    match seg {
        Segment::Key(k) => {
            if parent.is_empty() {
                k.clone()
            } else {
                format!("{parent}.{k}")
            }
        }
        Segment::Index(i) => format!("{parent}[{i}]"),
    }
}

/// Where every path of one document starts, built on demand from the text.
#[derive(Debug, Default)]
pub struct PositionIndex {
    map: HashMap<String, Position>,
}

impl PositionIndex {
    /// Walks the YAML events of `text` and records each node's position by
    /// its dotted path. A text the event parser cannot read gives an empty
    /// index (errors then carry paths only).
    pub fn build(text: &str) -> Self {
        use saphyr_parser::Parser;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut walk = IndexWalk::default();
        let mut parser = Parser::new_from_str(text);
        while let Some(Ok((ev, span))) = parser.next_event() {
            let pos = Position {
                line: span.start.line(),
                column: span.start.col() + 1,
            };
            if !walk.event(ev, pos) {
                break;
            }
        }
        PositionIndex { map: walk.map }
    }

    /// The position of `path`, or of its longest prefix that has one
    /// (a path into an alias or a merged key points at the alias).
    pub fn find(&self, path: &Path) -> Option<Position> {
        let mut segs = path.0.as_slice();
        loop {
            if segs.is_empty() {
                return None;
            }
            let p = Path(segs.to_vec()).to_string();
            if let Some(pos) = self.map.get(&p) {
                return Some(*pos);
            }
            segs = &segs[..segs.len() - 1];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_default(s: &str) -> Result<Value, Error> {
        load(s, &Limits::default())
    }

    #[test]
    fn keeps_key_order() {
        let v = load_default("b: 1\na: 2\nc: 3\n").unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["b", "a", "c"]);
    }

    #[test]
    fn dates_stay_strings_and_merge_keys_apply() {
        let v = load_default("v: 2013-05-23\nbase: &b {x: 1, y: 2}\nm: {<<: *b, y: 3}\n").unwrap();
        assert_eq!(v["v"], "2013-05-23");
        assert_eq!(v["m"]["x"], 1);
        assert_eq!(v["m"]["y"], 3);
    }

    #[test]
    fn application_tags_are_rejected() {
        let e = load_default("a: !foo bar\n").unwrap_err();
        assert!(e.message.contains("!foo"), "{e}");
        assert_eq!(e.position.map(|p| p.line), Some(1));
    }

    #[test]
    fn syntax_error_has_position() {
        let e = load_default("a: [1, 2\nb: c\n").unwrap_err();
        assert_eq!(e.kind, ErrorKind::HttpBadRequest);
        assert!(e.position.is_some());
    }

    #[test]
    fn bom_is_skipped() {
        let v = load_default("\u{feff}heat_template_version: 2013-05-23\n").unwrap();
        assert_eq!(v["heat_template_version"], "2013-05-23");
    }

    #[test]
    fn too_large_is_refused_before_parsing() {
        let limits = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        let e = load("a: 0123456789", &limits).unwrap_err();
        assert_eq!(e.kind, ErrorKind::RequestLimitExceeded);
        assert!(e
            .message
            .contains("exceeds maximum allowed size (10 bytes)"));
    }

    #[test]
    fn alias_bomb_stops_at_node_limit() {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            s.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
                p = i - 1
            ));
        }
        let e = load_default(&s).unwrap_err();
        assert_eq!(e.kind, ErrorKind::RequestLimitExceeded, "{e}");
    }

    #[test]
    fn deep_nesting_stops_at_depth_limit() {
        let s = format!("{}1{}", "[".repeat(150), "]".repeat(150));
        let e = load_default(&s).unwrap_err();
        assert_eq!(e.kind, ErrorKind::RequestLimitExceeded, "{e}");
        let s = format!("{}1{}", "[".repeat(101), "]".repeat(101));
        let e = load_default(&s).unwrap_err();
        assert!(e.message.contains("100 levels"), "{e}");
    }

    #[test]
    fn positions_of_paths() {
        let text = "heat_template_version: 2015-04-30\nresources:\n  server:\n    type: OS::Nova::Server\n    properties:\n      networks:\n        - port: {get_resource: p}\n        - x\n";
        let idx = PositionIndex::build(text);
        let p = Path::keys(["resources", "server", "type"]);
        assert_eq!(idx.find(&p), Some(Position { line: 4, column: 5 }));
        let p = Path::keys(["resources", "server", "properties", "networks"])
            .index(0)
            .key("port")
            .key("get_resource");
        assert_eq!(
            idx.find(&p),
            Some(Position {
                line: 7,
                column: 18
            })
        );
        let p = Path::keys(["resources", "server", "properties", "networks"]).index(1);
        assert_eq!(
            idx.find(&p),
            Some(Position {
                line: 8,
                column: 11
            })
        );
        let p = Path::keys(["resources", "nope"]);
        assert_eq!(idx.find(&p), Some(Position { line: 2, column: 1 }));
    }
}

//! Where each key of a YAML document sits, by dotted path (`serverless.memory_mb`,
//! `serverful.load_balancer.cidrs[1]`), so errors found after deserialising can still
//! name a line and column.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Default)]
pub struct Spans {
    keys: HashMap<String, Position>,
    duplicates: Vec<(String, Position)>,
}

impl Spans {
    /// Maps every mapping key and sequence item of `source`. A document that does not
    /// parse yields an empty map (serde reports that error with its own position).
    pub fn of(source: &str) -> Spans {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(source);
        if parser.load(&mut builder, false).is_err() {
            return Spans::default();
        }
        Spans {
            keys: builder.keys,
            duplicates: builder.duplicates,
        }
    }

    /// Keys given twice in one mapping, with the position of the second.
    pub fn duplicates(&self) -> &[(String, Position)] {
        &self.duplicates
    }

    /// The position of `path`, or of its nearest ancestor that is present (a missing
    /// field is reported where its parent is).
    pub fn locate(&self, path: &str) -> Position {
        let mut p = path;
        loop {
            if let Some(pos) = self.keys.get(p) {
                return *pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return Position { line: 1, column: 1 },
            }
        }
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    keys: HashMap<String, Position>,
    duplicates: Vec<(String, Position)>,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Builder {
    /// The path a value starting now would have, and notes that the slot is used.
    fn next_value_path(&mut self, mark: Marker) -> Option<String> {
        let pos = Position {
            line: mark.line(),
            column: mark.col() + 1,
        };
        match self.stack.last_mut()? {
            Frame::Map { path, key } => key.take().map(|k| join(path, &k)),
            Frame::Seq { path, index } => {
                let p = format!("{path}[{index}]");
                *index += 1;
                self.keys.insert(p.clone(), pos);
                Some(p)
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Map { path, key }) = self.stack.last_mut()
                    && key.is_none()
                {
                    let full = join(path, &value);
                    let pos = Position {
                        line: mark.line(),
                        column: mark.col() + 1,
                    };
                    match self.keys.entry(full) {
                        std::collections::hash_map::Entry::Occupied(e) => {
                            self.duplicates.push((e.key().clone(), pos));
                        }
                        std::collections::hash_map::Entry::Vacant(e) => {
                            e.insert(pos);
                        }
                    }
                    *key = Some(value);
                } else {
                    self.next_value_path(mark);
                }
            }
            Event::MappingStart(..) => {
                let path = if self.stack.is_empty() {
                    Some(String::new())
                } else {
                    self.next_value_path(mark)
                };
                self.stack.push(Frame::Map {
                    path: path.unwrap_or_default(),
                    key: None,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.next_value_path(mark).unwrap_or_default();
                self.stack.push(Frame::Seq { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(..) => {
                self.next_value_path(mark);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_keys_and_sequence_items() {
        let src = "name: a\nserverless:\n  memory_mb: 20000\n  timeout_s: 31\nserverful:\n  load_balancer:\n    cidrs:\n      - 10.0.0.0/8\n      - nope\n";
        let s = Spans::of(src);
        assert_eq!(s.locate("name"), Position { line: 1, column: 1 });
        assert_eq!(
            s.locate("serverless.memory_mb"),
            Position { line: 3, column: 3 }
        );
        assert_eq!(
            s.locate("serverless.timeout_s"),
            Position { line: 4, column: 3 }
        );
        assert_eq!(
            s.locate("serverful.load_balancer.cidrs[1]"),
            Position { line: 9, column: 9 }
        );
        // Absent: falls back to the nearest present ancestor.
        assert_eq!(
            s.locate("serverless.reserved_concurrency"),
            Position { line: 2, column: 1 }
        );
    }
}

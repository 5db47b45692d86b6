//! Printing results: human tables by default, the server's JSON with `-o json`.

use clap::ValueEnum;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// A column: its header and the JSON pointer of its value in each row.
pub type Col = (&'static str, &'static str);

pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        other => other.to_string(),
    }
}

/// Left-aligned columns separated by two spaces.
pub fn table(rows: &[Value], cols: &[Col]) -> String {
    let cells: Vec<Vec<String>> =
        std::iter::once(cols.iter().map(|(h, _)| h.to_string()).collect())
            .chain(rows.iter().map(|r| {
                cols.iter()
                    .map(|(_, p)| cell(r.pointer(p).unwrap_or(&Value::Null)))
                    .collect()
            }))
            .collect();
    let widths: Vec<usize> = (0..cols.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in &cells {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.pop();
    out
}

pub struct Out {
    pub format: Format,
}

impl Out {
    pub fn json(&self, v: &Value) {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }

    /// A list of rows.
    pub fn list(&self, rows: &[Value], cols: &[Col]) {
        match self.format {
            Format::Json => self.json(&Value::Array(rows.to_vec())),
            Format::Table => println!("{}", table(rows, cols)),
        }
    }

    /// One object as `key: value` lines.
    pub fn one(&self, v: &Value, cols: &[Col]) {
        match self.format {
            Format::Json => self.json(v),
            Format::Table => {
                for (h, p) in cols {
                    println!("{h:<14} {}", cell(v.pointer(p).unwrap_or(&Value::Null)));
                }
            }
        }
    }

    /// One object plus a secret shown once (tokens).
    pub fn with_secret(&self, v: &Value, cols: &[Col], secret_ptr: &str, what: &str) {
        match self.format {
            Format::Json => self.json(v),
            Format::Table => {
                self.one(v, cols);
                if let Some(s) = v.pointer(secret_ptr).and_then(Value::as_str) {
                    println!("\n{what} (shown once, store it now):\n{s}");
                }
            }
        }
    }

    pub fn done(&self, v: &Value, message: &str) {
        match self.format {
            Format::Json => self.json(v),
            Format::Table => println!("{message}"),
        }
    }
}

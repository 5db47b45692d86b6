//! Secret values masked out of what a server writes to its log.
//!
//! A server is given its secrets (env or files) and may print them: a debug line, a
//! config dump, an error echoing a token. Its log is read by everyone who may see the
//! server, and relayed by the control plane and the dashboard, so the DTMA — the only
//! place that knows the values — replaces each occurrence with `[secret:NAME]` before a
//! line is kept or served.
//!
//! What is masked: each line of a value, trimmed, and its JSON-escaped form (a value
//! inside a JSON log line), wherever it occurs in a line; overlapping occurrences are
//! masked as one. What is not: values (lines of values) shorter than [`VALUE_MIN`] bytes —
//! masking `true` or `1234` everywhere would wreck the log and, worse, point at the value
//! (every masked spot says "the secret is this text") — and transformed forms (base64,
//! URL-encoded, a part of the value). Those are named by [`Redactor::unmasked`] so the
//! DTMA can warn.

use std::collections::BTreeMap;

/// The shortest value (or line of a multi-line value) that is masked.
pub const VALUE_MIN: usize = 6;

/// The longest pattern searched for. Longer value lines are searched for as consecutive
/// pieces of at most this length (an occurrence of the whole is still masked whole), so
/// a reader that cuts long lines knows a value can straddle its cut by less than this.
pub const PATTERN_MAX: usize = 1024;

/// What a line is masked with when the values to mask are not known (secrets not yet
/// fetched again after a DTMA restart): nothing of it is shown.
pub const HIDDEN: &str = "[line hidden: this server's secret values are not known yet]";

#[derive(Debug, Default)]
pub struct Redactor {
    /// (needle, index into `names`); occurrences are merged, so order does not matter.
    patterns: Vec<(String, usize)>,
    names: Vec<String>,
    unmasked: Vec<String>,
    /// Every line is hidden (see [`HIDDEN`]).
    blind: bool,
}

impl Redactor {
    /// Masks the values of `secrets` (name → value).
    pub fn new(secrets: &BTreeMap<String, String>) -> Redactor {
        let mut r = Redactor::default();
        for (name, value) in secrets {
            let idx = r.names.len();
            r.names.push(name.clone());
            let mut any = false;
            for line in value.split('\n') {
                let piece = line.trim();
                if piece.len() < VALUE_MIN {
                    continue;
                }
                any = true;
                // A JSON string's body: `"` and `\` escaped, control characters too.
                let quoted = serde_json::to_string(piece).unwrap_or_default();
                let escaped = quoted
                    .strip_prefix('"')
                    .and_then(|q| q.strip_suffix('"'))
                    .unwrap_or(piece);
                for form in [piece, escaped] {
                    for chunk in chunks(form) {
                        if !r.patterns.iter().any(|(p, _)| p == chunk) {
                            r.patterns.push((chunk.to_string(), idx));
                        }
                    }
                }
            }
            if !any && !value.trim().is_empty() {
                r.unmasked.push(name.clone());
            }
        }
        r
    }

    /// Masks `older`'s values too (those of an instance still running while a new
    /// generation with rotated values starts).
    pub fn and(mut self, older: &Redactor) -> Redactor {
        for (p, idx) in &older.patterns {
            if !self.patterns.iter().any(|(q, _)| q == p) {
                self.names.push(older.names[*idx].clone());
                self.patterns.push((p.clone(), self.names.len() - 1));
            }
        }
        self
    }

    /// Hides every line: for a server whose secrets are needed but not known.
    pub fn blind() -> Redactor {
        Redactor {
            blind: true,
            ..Redactor::default()
        }
    }

    /// Nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty() && !self.blind
    }

    /// Names of secrets whose values are too short to be masked.
    pub fn unmasked(&self) -> &[String] {
        &self.unmasked
    }

    /// `text` with every secret value masked.
    pub fn mask(&self, text: &str) -> String {
        self.mask_prefix(text, text.len())
    }

    /// The first `keep` bytes of `text` (a char boundary), masked — occurrences are found
    /// in the whole of `text`, so one that straddles `keep` is masked, not half-shown.
    pub fn mask_prefix(&self, text: &str, keep: usize) -> String {
        if self.blind {
            return HIDDEN.to_string();
        }
        let keep = floor_boundary(text, keep);
        if self.patterns.is_empty() {
            return text[..keep].to_string();
        }
        // (start, end, name) of every occurrence, overlapping ones included.
        let mut hits: Vec<(usize, usize, usize)> = Vec::new();
        for (p, idx) in &self.patterns {
            let mut from = 0;
            while let Some(at) = text[from..].find(p.as_str()) {
                let start = from + at;
                hits.push((start, start + p.len(), *idx));
                // The next char: a self-overlapping value (`abab…`) is found at every place.
                from = start + text[start..].chars().next().map_or(1, char::len_utf8);
                if from >= text.len() {
                    break;
                }
            }
        }
        if hits.is_empty() {
            return text[..keep].to_string();
        }
        hits.sort_unstable();
        let mut out = String::with_capacity(keep);
        let mut pos = 0;
        let mut i = 0;
        while i < hits.len() && hits[i].0 < keep {
            let (start, mut end, idx) = hits[i];
            // Overlapping occurrences become one mask (so `pos <= start` below).
            while i + 1 < hits.len() && hits[i + 1].0 < end {
                i += 1;
                end = end.max(hits[i].1);
            }
            out.push_str(&text[pos..start]);
            out.push_str("[secret:");
            out.push_str(&self.names[idx]);
            out.push(']');
            pos = end;
            i += 1;
        }
        if pos < keep {
            out.push_str(&text[pos..keep]);
        }
        out
    }
}

/// The line a server's log starts with for each secret whose value is not masked.
pub fn unmasked_note(name: &str) -> String {
    format!(
        "[toolbelt] the value of secret {name} is shorter than {VALUE_MIN} bytes and is not masked in this log"
    )
}

/// `form` as consecutive pieces of at most [`PATTERN_MAX`] bytes (the last one ends at the
/// end and may overlap the one before, so every piece is long).
fn chunks(form: &str) -> Vec<&str> {
    if form.len() <= PATTERN_MAX {
        return vec![form];
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start + PATTERN_MAX < form.len() {
        let end = floor_boundary(form, start + PATTERN_MAX);
        out.push(&form[start..end]);
        start = end;
    }
    let last = ceil_boundary(form, form.len() - PATTERN_MAX);
    out.push(&form[last..]);
    out
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
#[path = "redact_tests.rs"]
mod tests;

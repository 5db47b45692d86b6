//! The tokenizer of the tool index: identifiers split where a person would read a word
//! boundary (`_`, `-`, `.`, camelCase), lower-cased, common English
//! function words dropped, and each word stemmed (Porter2, `rust-stemmers`), so that
//! "listIssues", "list_issues" and "listing issue" meet on the same terms.

use rust_stemmers::{Algorithm, Stemmer};

/// Words that carry no meaning for picking a tool. Short on purpose: words like "all",
/// "new" or "get" do tell tools apart.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "for", "from", "i", "in", "into",
    "is", "it", "its", "me", "my", "of", "on", "or", "our", "so", "some", "that", "the", "their",
    "them", "then", "there", "these", "this", "those", "to", "us", "was", "we", "what", "when",
    "where", "which", "who", "will", "with", "you", "your",
];

pub fn is_stopword(w: &str) -> bool {
    STOPWORDS.binary_search(&w).is_ok()
}

/// Splits text into lower-cased words (no stemming, stopwords kept).
pub fn split(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for chunk in text.split(|c: char| !c.is_alphanumeric()) {
        let mut cur = String::new();
        let mut prev: Option<char> = None;
        for c in chunk.chars() {
            let boundary = match prev {
                Some(p) => p.is_lowercase() && c.is_uppercase(),
                None => false,
            };
            if boundary && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            cur.extend(c.to_lowercase());
            prev = Some(c);
        }
        if !cur.is_empty() {
            out.push(cur);
        }
    }
    out
}

/// The index's tokenizer (also used for queries, so both sides meet on the same terms).
pub struct Words {
    stemmer: Stemmer,
}

impl Default for Words {
    fn default() -> Self {
        Words {
            stemmer: Stemmer::create(Algorithm::English),
        }
    }
}

impl Words {
    /// The terms of a text: split, stopwords dropped, stemmed.
    pub fn terms(&self, text: &str) -> Vec<String> {
        split(text)
            .into_iter()
            .filter(|w| !is_stopword(w))
            .map(|w| self.stemmer.stem(&w).into_owned())
            .collect()
    }
}

impl bm25::Tokenizer for Words {
    fn tokenize(&self, input_text: &str) -> Vec<String> {
        self.terms(input_text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_split_where_words_meet() {
        assert_eq!(split("listIssues"), ["list", "issues"]);
        assert_eq!(split("github__create_issue"), ["github", "create", "issue"]);
        assert_eq!(split("s3-put.object v2"), ["s3", "put", "object", "v2"]);
        assert_eq!(split("HTTPServer"), ["httpserver"]);
        let w = Words::default();
        assert_eq!(w.terms("Listing the issues"), ["list", "issu"]);
        assert_eq!(w.terms("list_issues"), w.terms("listIssue"));
    }

    #[test]
    fn the_stopword_list_is_sorted() {
        let mut s = STOPWORDS.to_vec();
        s.sort_unstable();
        assert_eq!(s, STOPWORDS, "is_stopword searches it in order");
    }
}

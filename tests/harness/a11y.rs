//! The checks every page the browser shows goes through: Chromium's console (an error
//! logged there fails the test with the page's URL) and accessibility (every control
//! labelled, Tab reaches every control). Part of [`Browser`]; kept apart from the driving
//! of the browser (`browser.rs`), which calls [`Browser::console_clean`] around each step.

use super::Browser;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::Value;

impl Browser {
    /// Chromium's console since the last read, less the lines the test expected.
    pub async fn console(&self) -> Vec<String> {
        let v = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .unwrap_or_else(|e| panic!("reading the browser's console: {e}"));
        let allowed = self.allowed.lock().unwrap().clone();
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| {
                format!(
                    "{} {}",
                    e["level"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                )
            })
            .filter(|m| !allowed.iter().any(|a| m.contains(a.as_str())))
            .collect()
    }

    /// The console shows no errors (`when` says at which step).
    pub async fn console_clean(&self, when: &str) {
        let lines = self.console().await;
        self.allowed.lock().unwrap().clear();
        if !lines.is_empty() {
            panic!(
                "console of {} {when} is not clean:\n{}",
                self.url().await,
                lines.join("\n")
            );
        }
    }

    /// Every form control on the page has a label (a `<label>`, `aria-label` or
    /// `aria-labelledby`; buttons their text), and Tab from the top reaches every control
    /// in turn (a radio group is one stop). The failure lists the unlabelled or unreached ones.
    pub async fn accessible(&self) -> &Self {
        let path = self.path().await;
        let unlabelled = lines(self.js(&over_controls(UNLABELLED)).await);
        assert!(
            unlabelled.is_empty(),
            "{path}: controls without a label:\n{}",
            unlabelled.join("\n")
        );
        let count = self.js(&over_controls(CONTROLS)).await.as_u64().unwrap();
        // Tab once per control, and once more to see the cycle close, reading after each
        // press where focus is (a listener in the page would not run with JavaScript off).
        for _ in 0..=count {
            let tab = KeyActions::new("tab".into())
                .then(KeyAction::Down {
                    value: Key::Tab.into(),
                })
                .then(KeyAction::Up {
                    value: Key::Tab.into(),
                });
            self.client.perform_actions(tab).await.unwrap();
            self.js(FOCUSED).await;
        }
        let unreached = lines(self.js(UNREACHED).await);
        assert!(
            unreached.is_empty(),
            "{path}: controls Tab does not reach (of {count}):\n{}",
            unreached.join("\n")
        );
        self
    }

    /// The page passes every check: console clean, labels, Tab order.
    pub async fn checked(&self) -> &Self {
        self.accessible().await;
        self.console_clean("after the checks").await;
        self
    }
}

fn lines(v: Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|l| l.as_str().unwrap_or_default().to_string())
        .collect()
}

/// Chromium's console (`goog:loggingPrefs` browser=ALL): chromedriver's log endpoint,
/// which W3C WebDriver has no command for. Each read drains what it returns.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

/// The form controls a person can use: visible, enabled, focusable by Tab — not inside a
/// closed `<details>` (its summary is the stop; Chromium keeps boxes for folded content).
const CONTROL_FILTER: &str = r#"
const sel = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex="-1"])';
const folded = e => [...document.querySelectorAll('details:not([open])')].some(d =>
    d.contains(e) && !(e.tagName === 'SUMMARY' && e.parentElement === d));
const controls = [...document.querySelectorAll(sel)].filter(e =>
    !e.disabled && e.tabIndex >= 0 && e.getClientRects().length > 0
    && getComputedStyle(e).visibility !== 'hidden' && !folded(e));
"#;

fn over_controls(body: &str) -> String {
    format!("{CONTROL_FILTER}{body}")
}

/// Numbers the controls and blurs: the next Tab starts at the top. Their count.
const CONTROLS: &str = r#"
controls.forEach((e, i) => e.setAttribute('data-tabcheck', String(i)));
document.documentElement.setAttribute('data-tabseen', '');
if (document.activeElement) document.activeElement.blur();
window.focus();
return controls.length;
"#;

/// Notes which numbered control has focus now.
const FOCUSED: &str = r#"
const i = document.activeElement && document.activeElement.getAttribute('data-tabcheck');
const root = document.documentElement;
if (i !== null && i !== undefined) root.setAttribute('data-tabseen', root.getAttribute('data-tabseen') + ' ' + i);
return i;
"#;

/// The numbered controls focus never reached. A radio group is one Tab stop (the arrow
/// keys move within it, as browsers do): reaching one of its radios reaches the group.
const UNREACHED: &str = r#"
const seen = document.documentElement.getAttribute('data-tabseen').split(' ');
const all = [...document.querySelectorAll('[data-tabcheck]')];
const reached = e => seen.includes(e.getAttribute('data-tabcheck'));
const group = e => e.type === 'radio' && e.name
    ? all.filter(o => o.type === 'radio' && o.name === e.name && o.form === e.form)
    : [e];
return all.filter(e => !group(e).some(reached)).map(e => e.outerHTML.slice(0, 160));
"#;

/// Inputs without a label; buttons and links without a name.
const UNLABELLED: &str = r#"
const named = e => ['aria-label', 'aria-labelledby', 'title']
    .some(a => (e.getAttribute(a) || '').trim() !== '');
return controls.filter(e => {
    if (named(e)) return false;
    const tag = e.tagName.toLowerCase();
    const type = (e.getAttribute('type') || '').toLowerCase();
    if (['button', 'a', 'summary'].includes(tag) || ['submit', 'reset', 'button'].includes(type))
        return (e.textContent || e.value || '').trim() === '';
    return !(e.labels && e.labels.length > 0);
}).map(e => e.outerHTML.slice(0, 160));
"#;

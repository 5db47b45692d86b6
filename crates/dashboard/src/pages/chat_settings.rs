//! The chat page's settings form (issue 10): the agent's endpoint, model, system prompt,
//! temperature and most tool rounds per turn, saved through the same service call as
//! `PUT /api/v1/agents/{agent}/chat`; a refusal comes back next to its field, the posted
//! values kept.

use super::chat::{Shown, chrome, own_agent, page};
use crate::error::{Page, PageResult};
use crate::form::Form;
use crate::session::Dash;
use crate::view::Errors;
use axum::extract::{Extension, Path, State};
use toolbelt_chat::Chat as Runtime;
use toolbelt_chat::service::llms;
use toolbelt_chat::service::settings::{self, DEFAULT_MAX_STEPS, PutSettings};
use toolbelt_control::AppState;
use toolbelt_control::service::{Caller, ServiceError};
use toolbelt_model::agent::Agent;

/// An endpoint the agent may use, as an option of the form's select.
pub struct LlmOption {
    pub name: String,
    /// "name (kind, default model M, shared)".
    pub label: String,
    pub selected: bool,
}

/// The settings form: what is saved, or what was posted and refused.
pub struct SettingsForm {
    pub llms: Vec<LlmOption>,
    pub model: String,
    /// The chosen endpoint's default model (the model field's placeholder).
    pub default_model: String,
    pub system: String,
    pub temperature: String,
    pub max_steps: String,
    /// Shown unfolded: nothing saved yet, or a refusal to show.
    pub open: bool,
    pub errors: Errors,
}

impl SettingsForm {
    /// Whether an endpoint is selected (else the select starts at "choose").
    pub fn chosen(&self) -> bool {
        self.llms.iter().any(|o| o.selected)
    }

    /// The saved settings (an empty form when there are none).
    pub async fn saved(rt: &Runtime, caller: &Caller, a: &Agent) -> PageResult<SettingsForm> {
        let s = match settings::get(rt, caller, a.id.as_str()).await {
            Ok(s) => Some(s),
            Err(ServiceError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let mut f = SettingsForm {
            llms: Vec::new(),
            model: String::new(),
            default_model: String::new(),
            system: String::new(),
            temperature: String::new(),
            max_steps: DEFAULT_MAX_STEPS.to_string(),
            open: s.is_none(),
            errors: Errors::default(),
        };
        let chosen = match s {
            Some(s) => {
                f.model = s.model.unwrap_or_default();
                f.system = s.system.unwrap_or_default();
                f.temperature = s.temperature.map(|t| t.to_string()).unwrap_or_default();
                f.max_steps = s.max_steps.to_string();
                s.llm
            }
            None => String::new(),
        };
        f.options(rt, caller, a, &chosen).await?;
        Ok(f)
    }

    /// The posted form, refused with `e`.
    async fn posted(
        rt: &Runtime,
        caller: &Caller,
        a: &Agent,
        form: &Form,
        e: &ServiceError,
    ) -> PageResult<SettingsForm> {
        let mut f = SettingsForm {
            llms: Vec::new(),
            model: form.text("model"),
            default_model: String::new(),
            system: form.get("system").unwrap_or("").to_string(),
            temperature: form.text("temperature"),
            max_steps: form.text("max_steps"),
            open: true,
            errors: Errors::from_service(e),
        };
        f.options(rt, caller, a, &form.text("llm")).await?;
        Ok(f)
    }

    /// The endpoints the agent's owner (the caller: the page is the owner's) may use: their
    /// own and the shared ones.
    async fn options(
        &mut self,
        rt: &Runtime,
        caller: &Caller,
        a: &Agent,
        chosen: &str,
    ) -> PageResult<()> {
        for l in llms::list(rt, caller).await? {
            if l.owner_id.as_ref().is_some_and(|o| o != &a.owner_id) {
                continue;
            }
            let selected = l.name.as_str() == chosen || l.id.as_str() == chosen;
            if selected {
                self.default_model = l.model.clone().unwrap_or_default();
            }
            let mut label = format!("{} ({}", l.name, l.kind.as_str());
            if let Some(m) = &l.model {
                label.push_str(&format!(", default model {m}"));
            }
            if l.owner_id.is_none() {
                label.push_str(", shared");
            }
            label.push(')');
            self.llms.push(LlmOption {
                name: l.name.to_string(),
                label,
                selected,
            });
        }
        Ok(())
    }
}

/// A number field: empty is "not set"; anything else must parse.
fn number<T: std::str::FromStr>(
    f: &Form,
    field: &str,
    what: &str,
) -> Result<Option<T>, ServiceError> {
    let v = f.text(field);
    if v.is_empty() {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|_| ServiceError::invalid(field, format!("must be {what}")))
}

fn request(f: &Form) -> Result<PutSettings, ServiceError> {
    let llm = f.text("llm");
    if llm.is_empty() {
        return Err(ServiceError::invalid("llm", "choose an LLM endpoint"));
    }
    Ok(PutSettings {
        llm,
        model: Some(f.text("model")),
        system: f.get("system").map(str::to_string),
        temperature: number(f, "temperature", "a number from 0 to 2")?,
        max_steps: number(f, "max_steps", "a whole number from 1 to 100")?,
    })
}

pub async fn save(
    State(st): State<AppState>,
    Extension(rt): Extension<Runtime>,
    d: Dash,
    Path(id): Path<String>,
    f: Form,
) -> PageResult {
    let a = own_agent(&st, &d, &id).await?;
    let current = f.text("chat");
    let saved = match request(&f) {
        Ok(req) => settings::put(&rt, &d.caller, a.id.as_str(), req).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(_) => {
            let mut to = format!("/agents/{}/chat", a.id);
            if !current.is_empty() {
                let c: String = form_urlencoded::byte_serialize(current.as_bytes()).collect();
                to.push_str(&format!("?chat={c}"));
            }
            Ok(super::done(&to, "chat settings saved"))
        }
        Err(e @ ServiceError::NotFound(_)) => Err(e.into()),
        Err(e) => {
            let status = Page::from(e.clone()).status;
            let shown = Shown {
                current,
                settings: Some(SettingsForm::posted(&rt, &d.caller, &a, &f, &e).await?),
                ..Shown::default()
            };
            let mut res = super::render(&page(&rt, &d, &a, chrome(&d, None), shown).await?)?;
            *res.status_mut() = status;
            Ok(res)
        }
    }
}

//! The Marketplace for admins: add an entry (its spec as YAML or JSON — what
//! `POST /api/v1/catalog` takes and `toolbelt catalog create --file` reads — pasted
//! into a textarea or loaded from a file into it), edit one (its spec as YAML on a page of
//! its own, `PUT /api/v1/catalog/{slug}`'s rules) and deprecate one. Validation and the
//! admin rule are `service::catalog`'s.

use super::marketplace::{Filter, list_page};
use crate::error::{Page, PageResult};
use crate::form::Form;
use crate::session::Dash;
use crate::view::{Chrome, Errors};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use toolbelt_control::AppState;
use toolbelt_control::service;
use toolbelt_model::FieldError;
use toolbelt_model::catalog::{CatalogEntry, CatalogSpec, parse_spec, spec_yaml};

/// The add form after a refusal: the posted text and each error with the spec's field.
#[derive(Default)]
pub struct AddForm {
    pub spec: String,
    pub errors: Errors,
}

fn spec_error(message: String) -> Errors {
    Errors {
        fields: vec![FieldError {
            field: "spec".into(),
            message,
        }],
        general: None,
    }
}

/// The spec as the API would take it (`toolbelt_model::catalog::parse_spec`).
fn parse(text: &str) -> Result<CatalogSpec, Errors> {
    parse_spec(text).map_err(|e| spec_error(e.to_string()))
}

/// The posted `text` parsed and handed to `write` (the service's create or update); a
/// refusal as the errors at their fields with the status the API would answer.
async fn save<W>(
    text: &str,
    write: impl FnOnce(CatalogSpec) -> W,
) -> Result<CatalogEntry, (Errors, StatusCode)>
where
    W: std::future::Future<Output = service::Result<CatalogEntry>>,
{
    let spec = parse(text).map_err(|errors| (errors, StatusCode::UNPROCESSABLE_ENTITY))?;
    write(spec)
        .await
        .map_err(|e| (Errors::from_service(&e), Page::from(e).status))
}

pub async fn create(State(st): State<AppState>, d: Dash, f: Form) -> PageResult {
    d.caller.require_admin("write the catalog")?;
    let text = f.get("spec").unwrap_or("").to_string();
    let result = save(&text, |spec| service::catalog::create(&st, &d.caller, spec)).await;
    match result {
        Ok(e) => Ok(super::done(
            &format!("/marketplace/{}", e.spec.slug),
            &format!("entry {} added", e.spec.slug),
        )),
        Err((errors, status)) => {
            let c = Chrome::new(&d, "marketplace");
            let add = AddForm { spec: text, errors };
            let mut res = super::render(&list_page(&st, &d, c, Filter::default(), add).await?)?;
            *res.status_mut() = status;
            Ok(res)
        }
    }
}

fn title_of(spec: &CatalogSpec) -> String {
    if spec.display_name.is_empty() {
        spec.slug.clone()
    } else {
        spec.display_name.clone()
    }
}

#[derive(Template)]
#[template(path = "entry_edit.html")]
struct EditPage {
    c: Chrome,
    slug: String,
    title: String,
    form: AddForm,
}

/// The entry's spec as YAML, to edit (admins; a member is refused as by the API).
pub async fn edit(State(st): State<AppState>, d: Dash, Path(slug): Path<String>) -> PageResult {
    d.caller.require_admin("write the catalog")?;
    let e = service::catalog::get(&st, &d.caller, &slug).await?;
    let spec = spec_yaml(&e.spec).map_err(|err| Page {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("cannot show the entry as YAML: {err}"),
    })?;
    super::render(&EditPage {
        c: Chrome::new(&d, "marketplace"),
        title: title_of(&e.spec),
        slug: e.spec.slug.clone(),
        form: AddForm {
            spec,
            errors: Errors::default(),
        },
    })
}

/// Replaces the entry with the posted spec; a refusal re-renders the text with each error
/// at the spec's field (422), the entry unchanged.
pub async fn update(
    State(st): State<AppState>,
    d: Dash,
    Path(slug): Path<String>,
    f: Form,
) -> PageResult {
    d.caller.require_admin("write the catalog")?;
    let current = service::catalog::get(&st, &d.caller, &slug).await?;
    let text = f.get("spec").unwrap_or("").to_string();
    let slug = &current.spec.slug;
    let result = save(&text, |spec| {
        service::catalog::update(&st, &d.caller, slug, spec)
    })
    .await;
    match result {
        Ok(e) => Ok(super::done(
            &format!("/marketplace/{}", e.spec.slug),
            &format!("entry {} saved", e.spec.slug),
        )),
        Err((errors, status)) => {
            let mut res = super::render(&EditPage {
                c: Chrome::new(&d, "marketplace"),
                title: title_of(&current.spec),
                slug: current.spec.slug.clone(),
                form: AddForm { spec: text, errors },
            })?;
            *res.status_mut() = status;
            Ok(res)
        }
    }
}

pub async fn deprecate(
    State(st): State<AppState>,
    d: Dash,
    Path(slug): Path<String>,
    _f: Form,
) -> PageResult {
    let e = service::catalog::deprecate(&st, &d.caller, &slug).await?;
    Ok(super::done(
        &format!("/marketplace/{}", e.spec.slug),
        &format!(
            "entry {} deprecated: new servers cannot use it",
            e.spec.slug
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_specs_parse_and_nonsense_is_the_spec_fields_error() {
        let y = "slug: fx\ntransport: stdio\nsource:\n  type: image\n  image: fx\n";
        assert_eq!(parse(y).ok().unwrap().slug, "fx");
        let j =
            r#"{"slug": "fx", "transport": "stdio", "source": {"type": "image", "image": "fx"}}"#;
        assert_eq!(parse(j).ok().unwrap().slug, "fx");
        let bad = parse("slug: [").err().unwrap();
        assert_eq!(bad.fields[0].field, "spec");
        let not_entry = parse("hello: world").err().unwrap();
        assert!(not_entry.fields[0].message.contains("not a catalog entry"));
    }
}

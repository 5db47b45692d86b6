//! Following a server's list pages during discovery, within bounds: a server that
//! answers every page with a next cursor (the same one, or new ones for ever) or lists
//! an endless number of items must not loop or grow the gateway's memory; it fails
//! discovery with an error naming the bound (recorded on the server, retried later).

use rmcp::model::PaginatedRequestParams;
use rmcp::service::{Peer, RoleClient, ServiceError};
use std::collections::HashSet;

/// The most pages followed per list of one server.
pub const MAX_PAGES: usize = 100;
/// The most items (tools, prompts, resources, templates) accepted per list of one server.
pub const MAX_ITEMS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PagingError {
    #[error("its {what} list goes on for more than {MAX_PAGES} pages")]
    TooManyPages { what: &'static str },
    #[error("it lists more than {MAX_ITEMS} {what}")]
    TooManyItems { what: &'static str },
    #[error("its {what} list repeats the cursor {cursor:?}")]
    Loop { what: &'static str, cursor: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Paging(#[from] PagingError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// Every item of a paginated list, page by page through `page` (cursor in, items and
/// the next cursor out), within [`MAX_PAGES`] and [`MAX_ITEMS`].
pub async fn all<T, F, Fut>(what: &'static str, mut page: F) -> Result<Vec<T>, ListError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), ServiceError>>,
{
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    let mut cursor = None;
    for _ in 0..MAX_PAGES {
        let (got, next) = page(cursor.take()).await?;
        if items.len() + got.len() > MAX_ITEMS {
            return Err(PagingError::TooManyItems { what }.into());
        }
        items.extend(got);
        let Some(next) = next else {
            return Ok(items);
        };
        if !seen.insert(next.clone()) {
            return Err(PagingError::Loop {
                what,
                cursor: next.chars().take(64).collect(),
            }
            .into());
        }
        cursor = Some(next);
    }
    Err(PagingError::TooManyPages { what }.into())
}

fn params(cursor: Option<String>) -> Option<PaginatedRequestParams> {
    Some(PaginatedRequestParams::default().with_cursor(cursor))
}

pub async fn tools(p: &Peer<RoleClient>) -> Result<Vec<rmcp::model::Tool>, ListError> {
    all("tools", |c| async move {
        let r = p.list_tools(params(c)).await?;
        Ok((r.tools, r.next_cursor))
    })
    .await
}

pub async fn prompts(p: &Peer<RoleClient>) -> Result<Vec<rmcp::model::Prompt>, ListError> {
    all("prompts", |c| async move {
        let r = p.list_prompts(params(c)).await?;
        Ok((r.prompts, r.next_cursor))
    })
    .await
}

pub async fn resources(p: &Peer<RoleClient>) -> Result<Vec<rmcp::model::Resource>, ListError> {
    all("resources", |c| async move {
        let r = p.list_resources(params(c)).await?;
        Ok((r.resources, r.next_cursor))
    })
    .await
}

pub async fn templates(
    p: &Peer<RoleClient>,
) -> Result<Vec<rmcp::model::ResourceTemplate>, ListError> {
    all("resource templates", |c| async move {
        let r = p.list_resource_templates(params(c)).await?;
        Ok((r.resource_templates, r.next_cursor))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(
        pages: impl Fn(usize) -> (usize, Option<String>),
    ) -> (Result<Vec<u32>, ListError>, usize) {
        let asked = std::cell::Cell::new(0);
        let r = all("tools", |_| {
            let n = asked.get();
            asked.set(n + 1);
            let (count, next) = pages(n);
            async move { Ok((vec![0u32; count], next)) }
        })
        .await;
        (r, asked.get())
    }

    #[tokio::test]
    async fn endless_or_huge_lists_stop_at_their_bounds() {
        let (r, asked) = run(|i| (1, (i < 2).then(|| format!("c{i}")))).await;
        assert_eq!((r.unwrap().len(), asked), (3, 3), "a normal list");
        let (r, asked) = run(|_| (1, Some("same".into()))).await;
        assert!(
            matches!(r, Err(ListError::Paging(PagingError::Loop { .. }))),
            "{r:?}"
        );
        assert_eq!(asked, 2, "a repeated cursor stops at once");
        let (r, asked) = run(|i| (0, Some(format!("c{i}")))).await;
        assert!(
            matches!(r, Err(ListError::Paging(PagingError::TooManyPages { .. }))),
            "{r:?}"
        );
        assert_eq!(asked, MAX_PAGES);
        let (r, asked) = run(|i| (MAX_ITEMS / 2 + 1, Some(format!("c{i}")))).await;
        assert!(
            matches!(r, Err(ListError::Paging(PagingError::TooManyItems { .. }))),
            "{r:?}"
        );
        assert_eq!(asked, 2);
    }
}

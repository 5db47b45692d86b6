//! Reading typed values out of `AnyRow`s, with errors that name the column.

use crate::{Result, StoreError};
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::any::AnyRow;
use toolbelt_model::{Timestamp, ts_from_ms};

pub(crate) fn text(r: &AnyRow, col: &str) -> Result<String> {
    r.try_get::<String, _>(col)
        .map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

pub(crate) fn opt_text(r: &AnyRow, col: &str) -> Result<Option<String>> {
    r.try_get::<Option<String>, _>(col)
        .map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

pub(crate) fn int(r: &AnyRow, col: &str) -> Result<i64> {
    r.try_get::<i64, _>(col)
        .map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

pub(crate) fn opt_int(r: &AnyRow, col: &str) -> Result<Option<i64>> {
    r.try_get::<Option<i64>, _>(col)
        .map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

pub(crate) fn ts(r: &AnyRow, col: &str) -> Result<Timestamp> {
    int(r, col).map(ts_from_ms)
}

pub(crate) fn opt_ts(r: &AnyRow, col: &str) -> Result<Option<Timestamp>> {
    Ok(opt_int(r, col)?.map(ts_from_ms))
}

pub(crate) fn json<T: DeserializeOwned>(r: &AnyRow, col: &str) -> Result<T> {
    serde_json::from_str(&text(r, col)?).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

/// Parses a stored enum spelling.
pub(crate) fn parsed<T>(r: &AnyRow, col: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    let s = text(r, col)?;
    parse(&s).ok_or_else(|| StoreError::Corrupt(format!("{col}: unknown value {s:?}")))
}

pub(crate) fn now_ms() -> i64 {
    toolbelt_model::now().timestamp_millis()
}

pub(crate) fn ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

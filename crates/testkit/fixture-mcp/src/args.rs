//! Tool arguments: checked against the tool's current inputSchema, then read by name.
//!
//! Only the schema subset the fixture's own tools use is understood: `type` (string,
//! number, integer, boolean), `enum`, `minimum`, `maximum`, `required` and
//! `additionalProperties: false`. Every failure is a -32602 naming the field.

use rmcp::ErrorData as McpError;
use rmcp::model::{JsonObject, Tool};
use serde_json::{Value, json};

fn invalid(field: &str, why: impl std::fmt::Display) -> McpError {
    McpError::invalid_params(
        format!("invalid argument `{field}`: {why}"),
        Some(json!({ "field": field })),
    )
}

/// Checks `args` against `tool.input_schema`.
pub fn validate(tool: &Tool, args: &JsonObject) -> Result<(), McpError> {
    let schema = &tool.input_schema;
    let empty = JsonObject::new();
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let required = schema.get("required").and_then(Value::as_array);
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        if !args.contains_key(name) {
            return Err(invalid(name, "is required"));
        }
    }
    for (name, value) in args {
        let Some(prop) = props.get(name) else {
            return Err(invalid(name, "is not a parameter of this tool"));
        };
        check_value(name, prop, value)?;
    }
    Ok(())
}

fn check_value(name: &str, prop: &Value, value: &Value) -> Result<(), McpError> {
    let ty = prop.get("type").and_then(Value::as_str).unwrap_or("any");
    let ok = match ty {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => as_integer(value).is_some(),
        "boolean" => value.is_boolean(),
        _ => true,
    };
    if !ok {
        return Err(invalid(name, format!("must be of type {ty}")));
    }
    if let Some(allowed) = prop.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        return Err(invalid(
            name,
            format!("must be one of {}", Value::from(allowed.clone())),
        ));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = prop.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return Err(invalid(name, format!("must be at least {min}")));
        }
        if let Some(max) = prop.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return Err(invalid(name, format!("must be at most {max}")));
        }
    }
    Ok(())
}

/// JSON Schema's integer: any number without a fractional part (`3.0` counts).
fn as_integer(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let f = v.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// Validated arguments, read by name. The getters re-check types, so a tool whose
/// schema and code disagree answers -32602 instead of panicking.
pub struct Args<'a>(pub &'a JsonObject);

impl<'a> Args<'a> {
    fn get(&self, name: &str) -> Result<&'a Value, McpError> {
        self.0.get(name).ok_or_else(|| invalid(name, "is required"))
    }

    pub fn str(&self, name: &str) -> Result<&'a str, McpError> {
        self.get(name)?
            .as_str()
            .ok_or_else(|| invalid(name, "must be of type string"))
    }

    pub fn opt_str(&self, name: &str) -> Result<Option<&'a str>, McpError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.str(name).map(Some),
        }
    }

    pub fn num(&self, name: &str) -> Result<f64, McpError> {
        self.get(name)?
            .as_f64()
            .ok_or_else(|| invalid(name, "must be of type number"))
    }

    pub fn int(&self, name: &str) -> Result<i64, McpError> {
        as_integer(self.get(name)?).ok_or_else(|| invalid(name, "must be of type integer"))
    }

    /// A non-negative integer, for counts and durations.
    pub fn count(&self, name: &str) -> Result<u64, McpError> {
        u64::try_from(self.int(name)?).map_err(|_| invalid(name, "must be at least 0"))
    }
}

//! `ripple bench`: Ripple's cost and speed, measured on this machine and reproducible by anyone.
//!
//! - `ripple bench fanout` fans one synthetic stream batch out three ways (Ripple's fanout, the
//!   samples' naive fan-out, a raw HTTP ceiling) and compares posts, billed messages, speed and
//!   peak memory.
//! - `ripple bench e2e` plays N players over real WebSockets against `ripple dev` (or, with
//!   `--url`, a running stack) and reports write→receive latency, messages per update, DynamoDB
//!   usage and a cost estimate.
//! - `ripple bench cold-start` times each function binary's init and first invocations.
//!
//! | module | what it holds |
//! |---|---|
//! | [`fanout`] | `bench fanout`: the three strategies, each in a child process, and their results |
//! | [`batch`] | the synthetic stream batch, in Lambda's exact JSON shape |
//! | [`layout`] | channels and member connections, seeded as `connect` writes them |
//! | [`e2e`] | `bench e2e`: `ripple dev` in-process, its results, the handlers' timing for the Lambda cost |
//! | [`players`] | simulated players ([`crate::wsclient::WsClient`]s) and what they measured |
//! | [`remote`] | `bench e2e --url`: the same players against a running stack, bounded, cost confirmed first |
//! | [`cold_start`] | `bench cold-start`: each function binary behind [`crate::runtime_api`] |
//! | [`cost`] | the cost model: usage from the counters (DynamoDB, Lambda, logs), prices, the bill |
//! | [`histogram`] | latencies (`hdrhistogram`) and their SVG picture (`plotters`) |
//!
//! Tables are `comfy-table` Markdown, progress is `indicatif` on stderr; stdout carries only the
//! results.

pub mod batch;
pub mod cold_start;
pub mod cost;
pub mod e2e;
pub mod fanout;
pub mod histogram;
pub mod layout;
pub mod players;
pub mod remote;

use clap::Subcommand;
use serde_json::Value;
use tracing_subscriber::EnvFilter;

/// `ripple bench …`.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// Fan one synthetic stream batch out three ways (Ripple, the samples' naive fan-out, a raw
    /// HTTP ceiling) against DynamoDB Local and a loopback @connections server.
    Fanout(fanout::FanoutArgs),
    /// Players over real WebSockets against `ripple dev`: latency, messages per update,
    /// DynamoDB usage and cost per million delivered updates.
    E2e(e2e::E2eArgs),
    /// Each function binary's init time and first invocations, behind a loopback Lambda Runtime
    /// API against DynamoDB Local.
    ColdStart(cold_start::ColdStartArgs),
    /// One strategy of `bench fanout`, in its own process (used by `bench fanout`).
    #[command(hide = true)]
    FanoutRun(fanout::RunArgs),
}

/// Runs a bench. Logs go to stderr (default level `warn`, `RUST_LOG` overrides).
pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .compact()
        .try_init();
    match command {
        BenchCommand::Fanout(args) => fanout::run(args).await,
        BenchCommand::E2e(args) => e2e::run(args).await,
        BenchCommand::ColdStart(args) => cold_start::run(args).await,
        BenchCommand::FanoutRun(args) => fanout::run_child(args).await,
    }
}

/// A progress note on stderr.
pub(crate) fn note(text: &str) {
    eprintln!("{text}");
}

/// Prints `results` as one JSON line, or the readable report.
pub(crate) fn print<T: serde::Serialize>(
    json: bool,
    results: &T,
    render: impl FnOnce(&T) -> String,
) {
    match serde_json::to_string(results) {
        Ok(line) if json => println!("{line}"),
        _ => print!("{}", render(results)),
    }
}

/// A table name no other run uses.
pub(crate) fn unique_table_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{nanos:x}-{}", std::process::id())
}

/// A store on `endpoint` with the table `table` created.
pub(crate) async fn new_table(
    endpoint: &str,
    table: &str,
) -> anyhow::Result<ripple_common::store::Store> {
    use ripple_common::config::{dynamodb_client, local_sdk_config};
    let client = dynamodb_client(&local_sdk_config(), Some(endpoint));
    let store = ripple_common::store::Store::new(client, table.to_owned());
    store.create_table_if_missing().await?;
    Ok(store)
}

/// Deletes a table a bench made for itself (best effort: DynamoDB Local is in memory anyway).
pub(crate) async fn drop_table(store: &ripple_common::store::Store) {
    let table = store.table();
    if let Err(err) = store.client().delete_table().table_name(table).send().await {
        tracing::debug!(error = %err, table, "could not delete the bench table");
    }
}

/// The JSON object `into` with the fields of the object `fields` added.
pub(crate) fn merged(mut into: Value, fields: Value) -> Value {
    if let (Some(into), Value::Object(fields)) = (into.as_object_mut(), fields) {
        into.extend(fields);
    }
    into
}

/// Rounds to `digits` decimals (the JSON stays readable).
pub fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// `a / b`, or 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The median (the mean of the middle two for an even count; 0 for none).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `12345` → `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let comma = |i: usize| (i > 0 && (digits.len() - i).is_multiple_of(3)).then_some(',');
    digits
        .chars()
        .enumerate()
        .flat_map(|(i, c)| comma(i).into_iter().chain([c]))
        .collect()
}

/// A Markdown table (`comfy-table`): the first column left-aligned, the others right-aligned.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::ASCII_MARKDOWN)
        .set_header(header.to_vec())
        .add_rows(rows);
    for column in t.column_iter_mut().skip(1) {
        column.set_cell_alignment(comfy_table::CellAlignment::Right);
    }
    format!("{t}\n")
}

/// The readable report of `results` under `title`: its fields (nested ones dotted, `–` for
/// null: not measured) in one table, then each list (the bill's lines, the assumptions) on its own.
pub fn report<T: serde::Serialize>(title: &str, results: &T) -> String {
    let (mut rows, mut lists) = (Vec::new(), String::new());
    let value = serde_json::to_value(results).unwrap_or_default();
    flatten("", &value, &mut rows, &mut lists);
    let fields = if rows.is_empty() {
        String::new()
    } else {
        table(&["", ""], rows)
    };
    format!("{title}\n\n{fields}{lists}")
}

/// A field's value for reading: thousands separators, at most 4 decimals, dollars to 6, `–` for
/// null.
fn text(key: &str, v: &Value) -> String {
    let decimals = |x: f64| {
        format!("{x:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    };
    match v {
        Value::Null => "–".to_owned(),
        Value::String(s) => s.clone(),
        Value::Number(n) if key.ends_with("usd") => format!("${:.6}", n.as_f64().unwrap_or(0.0)),
        Value::Number(n) => n
            .as_u64()
            .map_or_else(|| decimals(n.as_f64().unwrap_or(0.0)), thousands),
        other => other.to_string(),
    }
}

/// Adds `value`'s scalar fields to `rows` (dotted keys) and its lists to `lists`, each a table
/// (a list of objects) or bullets, under its key.
fn flatten(key: &str, value: &Value, rows: &mut Vec<Vec<String>>, lists: &mut String) {
    match value {
        Value::Object(fields) => fields.iter().for_each(|(name, v)| {
            let dotted = if key.is_empty() {
                name.clone()
            } else {
                format!("{key}.{name}")
            };
            flatten(&dotted, v, rows, lists);
        }),
        Value::Array(items) => {
            let body = match items.first().and_then(Value::as_object) {
                Some(first) => {
                    let header: Vec<&str> = first.keys().map(String::as_str).collect();
                    let cells = |i: &Value| header.iter().map(|h| text(h, &i[*h])).collect();
                    table(&header, items.iter().map(cells).collect())
                }
                None => items
                    .iter()
                    .map(|i| format!("- {}\n", text(key, i)))
                    .collect(),
            };
            let label = if key.is_empty() {
                String::new()
            } else {
                format!("{key}:\n\n")
            };
            lists.push_str(&format!("\n{label}{body}"));
        }
        v => rows.push(vec![key.to_owned(), text(key, v)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_takes_the_middle_of_the_rounds() {
        // GIVEN wall times with an outlier WHEN the median is taken THEN the outlier is ignored
        assert_eq!(median(&[0.9, 0.01, 0.02]), 0.02);
        assert_eq!(median(&[0.04, 0.01, 0.02, 0.03]), 0.025);
        let medians = [&[][..], &[5.0, 1.0, 3.0], &[4.0, 1.0, 3.0, 2.0]].map(median);
        assert_eq!(medians, [0.0, 3.0, 2.5]);
    }

    #[test]
    fn tables_align_and_numbers_get_separators() {
        assert_eq!(
            [0, 999, 1_234_567].map(thousands),
            ["0", "999", "1,234,567"]
        );
        // GIVEN two rows of different widths WHEN tabulated THEN every line has the same width
        let rows = vec![
            vec!["a".into(), "1".into()],
            vec!["longer".into(), "1,000".into()],
        ];
        let t = table(&["name", "n"], rows);
        let widths: Vec<usize> = t.lines().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{t}");
    }
}

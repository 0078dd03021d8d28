//! The cost model: AWS on-demand prices (us-east-1, from the team's design notes) applied to what a
//! run used, and DynamoDB's billing units (1 KB per write unit, 4 KB per strongly consistent read
//! unit, its item-size rule; API Gateway's 32 KB messages are
//! `ripple_common::protocol::billed_messages`). Pure arithmetic; the benches count the usage.

use serde::Serialize;

/// Prices in US dollars (us-east-1, on demand), as `../shared/DESIGN.md` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prices {
    /// API Gateway WebSocket, per million messages (32 KB units), inbound and outbound alike.
    pub apigw_per_million_messages: f64,
    /// API Gateway WebSocket, per million connection-minutes.
    pub apigw_per_million_connection_minutes: f64,
    /// DynamoDB on demand, per million write / read request units.
    pub dynamodb_per_million_write_units: f64,
    pub dynamodb_per_million_read_units: f64,
    /// Lambda arm64, per GB-second; per million requests; every function's memory in GB (128 MB).
    pub lambda_per_gb_second: f64,
    pub lambda_per_million_requests: f64,
    pub lambda_memory_gb: f64,
    /// CloudWatch Logs, per GB ingested (standard log class).
    pub logs_per_gb_ingested: f64,
}

/// The prices the benches bill at.
pub const PRICES: Prices = Prices {
    apigw_per_million_messages: 1.00,
    apigw_per_million_connection_minutes: 0.25,
    dynamodb_per_million_write_units: 0.625,
    dynamodb_per_million_read_units: 0.125,
    lambda_per_gb_second: 0.000_013_333_4,
    lambda_per_million_requests: 0.20,
    lambda_memory_gb: 128.0 / 1024.0,
    logs_per_gb_ingested: 0.50,
};

/// What a run used, in billing units.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Client → server frames and `@connections` posts, in 32 KB units.
    pub inbound_messages: u64,
    pub outbound_messages: u64,
    pub connection_minutes: f64,
    pub write_units: f64,
    pub read_units: f64,
    /// Invocations of all three functions.
    pub lambda_requests: u64,
    /// Billed Lambda time over all invocations (each rounded up to the millisecond), in ms.
    pub lambda_billed_ms: f64,
    /// Bytes the functions print to CloudWatch Logs (platform, metrics and application lines).
    pub log_bytes: u64,
}

/// One line of the bill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostLine {
    pub item: &'static str,
    pub quantity: f64,
    pub unit: &'static str,
    pub usd: f64,
}

/// The bill for `usage`, line by line.
pub fn bill(u: &Usage, p: &Prices) -> Vec<CostLine> {
    let line = |item, quantity: f64, unit, usd| CostLine {
        item,
        quantity,
        unit,
        usd,
    };
    let per_million = |quantity: f64, price: f64| quantity * price / 1e6;
    let gb_seconds = u.lambda_billed_ms / 1000.0 * p.lambda_memory_gb;
    let (inbound, outbound) = (u.inbound_messages as f64, u.outbound_messages as f64);
    let requests = u.lambda_requests as f64;
    vec![
        line(
            "API Gateway messages in",
            inbound,
            "messages",
            per_million(inbound, p.apigw_per_million_messages),
        ),
        line(
            "API Gateway messages out",
            outbound,
            "messages",
            per_million(outbound, p.apigw_per_million_messages),
        ),
        line(
            "API Gateway connection-minutes",
            u.connection_minutes,
            "minutes",
            per_million(u.connection_minutes, p.apigw_per_million_connection_minutes),
        ),
        line(
            "DynamoDB writes",
            u.write_units,
            "WRU",
            per_million(u.write_units, p.dynamodb_per_million_write_units),
        ),
        line(
            "DynamoDB reads",
            u.read_units,
            "RRU",
            per_million(u.read_units, p.dynamodb_per_million_read_units),
        ),
        line(
            "Lambda requests",
            requests,
            "requests",
            per_million(requests, p.lambda_per_million_requests),
        ),
        line(
            "Lambda compute (arm64, 128 MB)",
            gb_seconds,
            "GB-s",
            gb_seconds * p.lambda_per_gb_second,
        ),
        line(
            "CloudWatch Logs ingestion",
            u.log_bytes as f64 / 1e6,
            "MB",
            u.log_bytes as f64 / 1e9 * p.logs_per_gb_ingested,
        ),
    ]
}

/// The bill's total.
pub fn total(lines: &[CostLine]) -> f64 {
    lines.iter().map(|l| l.usd).sum()
}

/// Dollars per million delivered updates (`None` when nothing was delivered).
pub fn per_million(total_usd: f64, delivered: u64) -> Option<f64> {
    (delivered > 0).then(|| total_usd / delivered as f64 * 1e6)
}

/// Write units for writing (or deleting) one item of `bytes`: one per started KB, at least one.
pub fn write_units(bytes: u64) -> u64 {
    bytes.div_ceil(1024).max(1)
}

/// Read units for a strongly consistent read of `bytes` (GetItem, or one Query page); an
/// eventually consistent one costs half.
pub fn strong_read_units(bytes: u64) -> f64 {
    bytes.div_ceil(4 * 1024).max(1) as f64
}

/// An item's size as DynamoDB counts it: attribute names plus values (strings by UTF-8 length,
/// numbers by about one byte per two significant digits plus one).
pub fn item_bytes(item: &serde_dynamo::Item) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_bytes(value))
        .sum()
}

fn value_bytes(value: &serde_dynamo::AttributeValue) -> u64 {
    use serde_dynamo::AttributeValue as V;
    let number = |n: &str| (n.chars().filter(char::is_ascii_digit).count() as u64).div_ceil(2) + 1;
    match value {
        V::S(s) => s.len() as u64,
        V::N(n) => number(n),
        V::B(b) => b.len() as u64,
        V::Bool(_) | V::Null(_) => 1,
        V::Ss(v) => v.iter().map(|s| s.len() as u64).sum(),
        V::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) as u64 + 1).sum(),
        V::Bs(v) => v.iter().map(|b| b.len() as u64).sum(),
        V::L(v) => 3 + v.iter().map(|x| 1 + value_bytes(x)).sum::<u64>(),
        V::M(m) => {
            3 + m
                .iter()
                .map(|(k, x)| 1 + k.len() as u64 + value_bytes(x))
                .sum::<u64>()
        }
    }
}

/// Expected number of distinct channels touched by `records` records spread uniformly over
/// `channels` channels: `m · (1 − (1 − 1/m)^r)`. Used to estimate fanout's Queries per batch.
pub fn expected_distinct_channels(channels: usize, records: f64) -> f64 {
    if channels == 0 || records <= 0.0 {
        return 0.0;
    }
    let m = channels as f64;
    m * (1.0 - (1.0 - 1.0 / m).powf(records))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn each_line_is_quantity_times_the_listed_price() {
        // GIVEN a million of everything countable and 1,000 s of Lambda time
        let usage = Usage {
            inbound_messages: 1_000_000,
            outbound_messages: 2_000_000,
            connection_minutes: 1_000_000.0,
            write_units: 1_000_000.0,
            read_units: 1_000_000.0,
            lambda_requests: 1_000_000,
            lambda_billed_ms: 1_000_000.0,
            log_bytes: 2_000_000_000,
        };
        // WHEN billed at the design notes' prices
        let lines = bill(&usage, &PRICES);
        // THEN every line matches the price list, 1,000 s at 128 MB is 125 GB-s, and 2 GB of
        // logs cost $1
        let expected = [
            1.00,
            2.00,
            0.25,
            0.625,
            0.125,
            0.20,
            125.0 * 0.000_013_333_4,
            1.00,
        ];
        for (got, want) in lines.iter().map(|l| l.usd).zip(expected) {
            assert!(close(got, want), "{got} != {want}");
        }
        assert!(close(total(&lines), expected.iter().sum()));
    }

    #[test]
    fn the_cost_per_million_updates_scales_the_total() {
        // GIVEN $0.50 spent on 250,000 delivered updates
        // WHEN expressed per million THEN it is $2.00; nothing delivered has no price
        assert!(per_million(0.5, 250_000).is_some_and(|v| close(v, 2.0)));
        assert_eq!(per_million(0.5, 0), None);
    }

    #[test]
    fn capacity_units_round_up_per_kb_and_per_4_kb() {
        // GIVEN items around the unit boundaries WHEN costed THEN units round up, never to zero
        assert_eq!(write_units(200), 1);
        assert_eq!(write_units(1025), 2);
        assert_eq!(strong_read_units(4096), 1.0);
        assert_eq!(strong_read_units(4097), 2.0);
        assert_eq!(strong_read_units(300) / 2.0, 0.5);
        assert_eq!(strong_read_units(30 * 1024) / 2.0, 4.0);
    }

    #[test]
    fn item_size_counts_names_and_values() {
        // GIVEN an item with a string and a number
        use serde_dynamo::AttributeValue as V;
        let item = serde_dynamo::Item::from(std::collections::HashMap::from([
            ("pk".to_owned(), V::S("conn#abc".into())),
            ("seq".to_owned(), V::N("1234".into())),
        ]));
        // WHEN sized THEN 2 + 8 for the string, 3 + (2 + 1) for the number
        assert_eq!(item_bytes(&item), 10 + 6);
    }

    #[test]
    fn distinct_channels_grow_with_records_up_to_the_channel_count() {
        // GIVEN two channels
        // WHEN one record arrives THEN one channel is touched; with many, both are
        assert!((expected_distinct_channels(2, 1.0) - 1.0).abs() < 1e-9);
        assert!((expected_distinct_channels(2, 50.0) - 2.0).abs() < 1e-9);
        assert!((expected_distinct_channels(1, 7.0) - 1.0).abs() < 1e-9);
        assert_eq!(expected_distinct_channels(3, 0.0), 0.0);
    }
}

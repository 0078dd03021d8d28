//! The cost model: AWS on-demand prices (us-east-1, from the team's design notes) applied to what a
//! run used. Pure arithmetic; the benches count the usage.

use serde::Serialize;

/// Prices in US dollars (us-east-1, on demand), as `../shared/DESIGN.md` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prices {
    /// API Gateway WebSocket, per million messages (32 KB units), inbound and outbound alike.
    pub apigw_per_million_messages: f64,
    /// API Gateway WebSocket, per million connection-minutes.
    pub apigw_per_million_connection_minutes: f64,
    /// DynamoDB on demand, per million write request units.
    pub dynamodb_per_million_write_units: f64,
    /// DynamoDB on demand, per million read request units.
    pub dynamodb_per_million_read_units: f64,
    /// Lambda arm64, per GB-second.
    pub lambda_per_gb_second: f64,
    /// Lambda, per million requests.
    pub lambda_per_million_requests: f64,
    /// Memory of every function, in GB (128 MB).
    pub lambda_memory_gb: f64,
    /// CloudWatch Logs, per GB ingested (standard log class).
    pub logs_per_gb_ingested: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            apigw_per_million_messages: 1.00,
            apigw_per_million_connection_minutes: 0.25,
            dynamodb_per_million_write_units: 0.625,
            dynamodb_per_million_read_units: 0.125,
            lambda_per_gb_second: 0.000_013_333_4,
            lambda_per_million_requests: 0.20,
            lambda_memory_gb: 128.0 / 1024.0,
            logs_per_gb_ingested: 0.50,
        }
    }
}

/// What a run used, in billing units.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Client → server frames, in 32 KB units.
    pub inbound_messages: u64,
    /// `@connections` posts, in 32 KB units.
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
pub fn bill(usage: &Usage, prices: &Prices) -> Vec<CostLine> {
    let per_million = |quantity: f64, price: f64| quantity * price / 1e6;
    let gb_seconds = usage.lambda_billed_ms / 1000.0 * prices.lambda_memory_gb;
    vec![
        CostLine {
            item: "API Gateway messages in",
            quantity: usage.inbound_messages as f64,
            unit: "messages",
            usd: per_million(
                usage.inbound_messages as f64,
                prices.apigw_per_million_messages,
            ),
        },
        CostLine {
            item: "API Gateway messages out",
            quantity: usage.outbound_messages as f64,
            unit: "messages",
            usd: per_million(
                usage.outbound_messages as f64,
                prices.apigw_per_million_messages,
            ),
        },
        CostLine {
            item: "API Gateway connection-minutes",
            quantity: usage.connection_minutes,
            unit: "minutes",
            usd: per_million(
                usage.connection_minutes,
                prices.apigw_per_million_connection_minutes,
            ),
        },
        CostLine {
            item: "DynamoDB writes",
            quantity: usage.write_units,
            unit: "WRU",
            usd: per_million(usage.write_units, prices.dynamodb_per_million_write_units),
        },
        CostLine {
            item: "DynamoDB reads",
            quantity: usage.read_units,
            unit: "RRU",
            usd: per_million(usage.read_units, prices.dynamodb_per_million_read_units),
        },
        CostLine {
            item: "Lambda requests",
            quantity: usage.lambda_requests as f64,
            unit: "requests",
            usd: per_million(
                usage.lambda_requests as f64,
                prices.lambda_per_million_requests,
            ),
        },
        CostLine {
            item: "Lambda compute (arm64, 128 MB)",
            quantity: gb_seconds,
            unit: "GB-s",
            usd: gb_seconds * prices.lambda_per_gb_second,
        },
        CostLine {
            item: "CloudWatch Logs ingestion",
            quantity: usage.log_bytes as f64 / 1e6,
            unit: "MB",
            usd: usage.log_bytes as f64 / 1e9 * prices.logs_per_gb_ingested,
        },
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
        let lines = bill(&usage, &Prices::default());
        let usd: Vec<f64> = lines.iter().map(|l| l.usd).collect();
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
        for (got, want) in usd.iter().zip(expected) {
            assert!(close(*got, want), "{got} != {want}");
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
}

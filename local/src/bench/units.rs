//! Billing units: DynamoDB capacity units (1 KB per write
//! unit, 4 KB per read unit), with DynamoDB's item-size rule (API Gateway messages:
//! `ripple_common::protocol::billed_messages`). Pure arithmetic.

/// One write unit covers 1 KB of item.
pub const WRITE_UNIT_BYTES: u64 = 1024;
/// One strongly consistent read unit covers 4 KB of item.
pub const READ_UNIT_BYTES: u64 = 4 * 1024;

/// Write units for writing (or deleting) one item of `bytes`: one per started KB, at least one.
pub fn write_units(bytes: u64) -> u64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1)
}

/// Read units for a strongly consistent read of `bytes` (GetItem, or one Query page).
pub fn strong_read_units(bytes: u64) -> f64 {
    bytes.div_ceil(READ_UNIT_BYTES).max(1) as f64
}

/// Read units for an eventually consistent read of `bytes` (every index Query): half price.
pub fn eventual_read_units(bytes: u64) -> f64 {
    strong_read_units(bytes) / 2.0
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
    match value {
        V::S(s) => s.len() as u64,
        V::N(n) => {
            let digits = n.chars().filter(char::is_ascii_digit).count() as u64;
            digits.div_ceil(2) + 1
        }
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

    #[test]
    fn a_frame_bills_one_message_per_started_32_kb() {
        // GIVEN frames of 0 B, 1 B, exactly 32 KB, and one byte more
        // WHEN billed THEN empty and small frames are one message, 32 KB + 1 is two
        use ripple_common::protocol::billed_messages;
        assert_eq!(billed_messages(0), 1);
        assert_eq!(billed_messages(1), 1);
        assert_eq!(billed_messages(32_768), 1);
        assert_eq!(billed_messages(32_769), 2);
        assert_eq!(billed_messages(128 * 1024), 4);
    }

    #[test]
    fn capacity_units_round_up_per_kb_and_per_4_kb() {
        // GIVEN items around the unit boundaries WHEN costed THEN units round up, never to zero
        assert_eq!(write_units(200), 1);
        assert_eq!(write_units(1025), 2);
        assert_eq!(strong_read_units(4096), 1.0);
        assert_eq!(strong_read_units(4097), 2.0);
        assert_eq!(eventual_read_units(300), 0.5);
        assert_eq!(eventual_read_units(30 * 1024), 4.0);
    }

    #[test]
    fn item_size_counts_names_and_values() {
        // GIVEN an item with a string and a number
        let mut item = serde_dynamo::Item::from(std::collections::HashMap::<
            String,
            serde_dynamo::AttributeValue,
        >::new());
        item.insert(
            "pk".into(),
            serde_dynamo::AttributeValue::S("conn#abc".into()),
        );
        item.insert("seq".into(), serde_dynamo::AttributeValue::N("1234".into()));
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

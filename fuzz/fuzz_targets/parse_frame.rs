//! Fuzzes the client frame parser: whatever the bytes, it returns a frame or a refusal with a
//! code and a message, never panics, and never accepts what the limits forbid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ripple_common::protocol::{
    ClientFrame, MAX_DATA_BYTES, MAX_TEXT_BYTES, parse_client_frame, validate_channel,
};

fuzz_target!(|data: &[u8]| {
    match parse_client_frame(data) {
        Ok(frame) => {
            assert!(validate_channel(frame.channel()).is_ok());
            match frame {
                ClientFrame::Message { text, .. } => {
                    assert!(!text.is_empty() && text.len() <= MAX_TEXT_BYTES)
                }
                ClientFrame::Position(p) => {
                    // DynamoDB's number range, as the nearest f64s to its bounds: 0, or
                    // 1e-130 <= |v| < 1e126 (every f64 below that one prints with exponent <= 125).
                    for v in [p.x, p.y, p.z] {
                        assert!(v == 0.0 || (1e-130..1e126).contains(&v.abs()), "{v:e}");
                    }
                    assert!(p.data.is_none_or(|d| d.len() <= MAX_DATA_BYTES));
                }
                ClientFrame::Join { .. } | ClientFrame::Leave { .. } => {}
            }
        }
        Err(refusal) => assert!(!refusal.message.is_empty()),
    }
});

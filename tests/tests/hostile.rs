//! Hostile input: a table of frames that must each be refused with their error code, write
//! nothing, and leave the connection open. Run through the `ingest` handler against DynamoDB
//! Local (API Gateway events in their JSON shape), and over a real WebSocket through `ripple dev`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: a panic is a failed test

use aws_lambda_events::encodings::Body;
use connect::ConnectState;
use ingest::IngestState;
use ripple::apigw::{connect_event, message_event};
use ripple::dev::DevOptions;
use ripple_tests::{TestTable, WsClient, start_dev, ws_context as ctx};

fn deep(n: usize) -> String {
    format!(
        r#"{{"action":"message","channel":"arena","text":"x","x":{}{}}}"#,
        "[".repeat(n),
        "]".repeat(n)
    )
}

/// (name, frame, expected code). Every frame is a well-formed WebSocket text frame.
fn hostile_frames() -> Vec<(&'static str, String, &'static str)> {
    let p = |rest: &str| format!(r#"{{"action":"position","channel":"arena",{rest}}}"#);
    let m = |rest: &str| format!(r#"{{"action":"message","channel":"arena",{rest}}}"#);
    vec![
        ("empty frame", String::new(), "bad_request"),
        ("whitespace", "   ".into(), "bad_request"),
        ("not json", "hello".into(), "bad_request"),
        (
            "truncated json",
            r#"{"action":"message""#.into(),
            "bad_request",
        ),
        ("json null", "null".into(), "bad_request"),
        (
            "json array",
            r#"[{"action":"join","channel":"arena"}]"#.into(),
            "bad_request",
        ),
        ("json string", r#""join""#.into(), "bad_request"),
        ("json number", "42".into(), "bad_request"),
        (
            "byte order mark",
            "\u{feff}{\"action\":\"join\",\"channel\":\"arena\"}".into(),
            "bad_request",
        ),
        (
            "trailing garbage",
            r#"{"action":"join","channel":"arena"} x"#.into(),
            "bad_request",
        ),
        ("NaN literal", p(r#""x":NaN,"y":0,"seq":1"#), "bad_request"),
        (
            "NaN as string",
            p(r#""x":"NaN","y":0,"seq":1"#),
            "bad_request",
        ),
        (
            "Infinity as string",
            p(r#""x":"Infinity","y":0,"seq":1"#),
            "bad_request",
        ),
        (
            "-Infinity literal",
            p(r#""x":-Infinity,"y":0,"seq":1"#),
            "bad_request",
        ),
        (
            "number overflowing f64",
            p(r#""x":1e400,"y":0,"seq":1"#),
            "bad_request",
        ),
        (
            "huge negative exponent is fine but y missing",
            p(r#""x":1e-400,"seq":1"#),
            "bad_request",
        ),
        (
            "x above DynamoDB's range",
            p(r#""x":1e300,"y":0,"seq":1"#),
            "bad_request",
        ),
        (
            "y below DynamoDB's range",
            p(r#""x":0,"y":-1e-200,"seq":1"#),
            "bad_request",
        ),
        (
            "z just past DynamoDB's largest",
            p(r#""x":0,"y":0,"z":1e126,"seq":1"#),
            "bad_request",
        ),
        (
            "seq repeated",
            p(r#""x":0,"y":0,"seq":1,"seq":2"#),
            "bad_request",
        ),
        (
            "seq repeated through an escape",
            p(r#""x":0,"y":0,"seq":1,"s\u0065q":2"#),
            "bad_request",
        ),
        (
            "key repeated inside data",
            p(r#""x":0,"y":0,"seq":1,"data":{"k":1,"k":2}"#),
            "bad_request",
        ),
        (
            "action repeated",
            r#"{"action":"fly","action":"join","channel":"arena"}"#.into(),
            "bad_request",
        ),
        ("x as bool", p(r#""x":true,"y":0,"seq":1"#), "bad_request"),
        ("x as object", p(r#""x":{},"y":0,"seq":1"#), "bad_request"),
        ("x null", p(r#""x":null,"y":0,"seq":1"#), "bad_request"),
        (
            "z as string",
            p(r#""x":0,"y":0,"z":"0","seq":1"#),
            "bad_request",
        ),
        ("seq negative", p(r#""x":0,"y":0,"seq":-1"#), "bad_request"),
        (
            "seq fractional",
            p(r#""x":0,"y":0,"seq":1.5"#),
            "bad_request",
        ),
        (
            "seq beyond u64",
            p(r#""x":0,"y":0,"seq":18446744073709551616"#),
            "bad_request",
        ),
        (
            "seq as string",
            p(r#""x":0,"y":0,"seq":"7""#),
            "bad_request",
        ),
        ("seq missing", p(r#""x":0,"y":0"#), "bad_request"),
        (
            "data not an object",
            p(r#""x":0,"y":0,"seq":1,"data":[1,2]"#),
            "bad_request",
        ),
        (
            "data over 1 KB",
            p(&format!(
                r#""x":0,"y":0,"seq":1,"data":{{"k":"{}"}}"#,
                "d".repeat(1100)
            )),
            "too_large",
        ),
        ("text missing", m(r#""txt":"hi""#), "bad_request"),
        ("text empty", m(r#""text":"""#), "bad_request"),
        ("text not a string", m(r#""text":["hi"]"#), "bad_request"),
        (
            "text over 4096 bytes",
            m(&format!(r#""text":"{}""#, "é".repeat(2049))),
            "too_large",
        ),
        ("deep nesting", deep(5000), "bad_request"),
        (
            "action missing",
            r#"{"channel":"arena","text":"hi"}"#.into(),
            "unknown_action",
        ),
        (
            "action unknown",
            r#"{"action":"fly","channel":"arena"}"#.into(),
            "unknown_action",
        ),
        (
            "action differently cased",
            r#"{"action":"JOIN","channel":"arena"}"#.into(),
            "unknown_action",
        ),
        (
            "action is a number",
            r#"{"action":1,"channel":"arena"}"#.into(),
            "bad_request",
        ),
        ("action is null", r#"{"action":null}"#.into(), "bad_request"),
        (
            "route key as action",
            r#"{"action":"$default"}"#.into(),
            "unknown_action",
        ),
        (
            "channel missing",
            r#"{"action":"join"}"#.into(),
            "bad_request",
        ),
        (
            "channel empty",
            r#"{"action":"join","channel":""}"#.into(),
            "bad_request",
        ),
        (
            "channel 65 characters",
            format!(r#"{{"action":"join","channel":"{}"}}"#, "c".repeat(65)),
            "bad_request",
        ),
        (
            "channel with space",
            r#"{"action":"join","channel":"a b"}"#.into(),
            "bad_request",
        ),
        (
            "channel with hash (key separator)",
            r#"{"action":"join","channel":"a#b"}"#.into(),
            "bad_request",
        ),
        (
            "channel with slash",
            r#"{"action":"join","channel":"../etc"}"#.into(),
            "bad_request",
        ),
        (
            "channel unicode",
            r#"{"action":"join","channel":"arène"}"#.into(),
            "bad_request",
        ),
        (
            "channel NUL",
            r#"{"action":"join","channel":"a\u0000"}"#.into(),
            "bad_request",
        ),
        (
            "channel as number",
            r#"{"action":"join","channel":7}"#.into(),
            "bad_request",
        ),
        (
            "publish to an unjoined channel",
            r#"{"action":"message","channel":"lobby","text":"hi"}"#.into(),
            "not_member",
        ),
        (
            "position to an unjoined channel",
            r#"{"action":"position","channel":"lobby","x":0,"y":0,"seq":1}"#.into(),
            "not_member",
        ),
        (
            "leave an unjoined channel",
            r#"{"action":"leave","channel":"lobby"}"#.into(),
            "not_member",
        ),
    ]
}

#[tokio::test]
async fn every_hostile_frame_gets_its_error_code_and_writes_nothing() {
    // GIVEN alice connected to arena, and the stream drained
    let mut table = TestTable::new().await.unwrap();
    let connect = ConnectState::new(table.store.clone(), table.settings.clone());
    let ingest = IngestState::new(table.store.clone(), table.settings.clone());
    let q = vec![
        ("user".into(), "alice".into()),
        ("channel".into(), "arena".into()),
    ];
    assert_eq!(
        connect::handle(&connect, connect_event(&ctx("A"), &[], &q, 1).unwrap())
            .await
            .status_code,
        200
    );
    table.take_stream_event().await.unwrap();
    let items = table.item_count().await.unwrap();
    let frames = hostile_frames();
    assert!(frames.len() >= 40, "{} frames", frames.len());

    let mut cases = frames;
    // Frames API Gateway could deliver but a WebSocket text frame cannot carry.
    cases.push((
        "over 128 KB",
        format!(
            r#"{{"action":"message","channel":"arena","text":"{}"}}"#,
            "x".repeat(200 * 1024)
        ),
        "too_large",
    ));
    for (name, frame, code) in &cases {
        // WHEN alice sends it
        let response = ingest::handle(&ingest, message_event(&ctx("A"), frame, 2).unwrap()).await;
        // THEN API Gateway gets 200 (the connection stays open) and an error frame for her
        assert_eq!(response.status_code, 200, "{name}");
        let Some(Body::Text(body)) = response.body else {
            panic!("{name}: no error frame")
        };
        let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(reply["type"], "error", "{name}");
        assert_eq!(reply["code"], *code, "{name}: {}", reply["message"]);
    }
    // AND a binary frame (invalid UTF-8 included) is refused the same way
    let mut binary = message_event(&ctx("A"), "", 3).unwrap();
    binary.is_base64_encoded = true;
    binary.body = Some("/w==".into()); // 0xFF
    let response = ingest::handle(&ingest, binary).await;
    let Some(Body::Text(body)) = response.body else {
        panic!("binary: no error frame")
    };
    assert!(body.contains("bad_request"));

    // AND nothing was written: same items, no stream record
    assert_eq!(table.item_count().await.unwrap(), items);
    assert!(table.take_stream_event().await.unwrap().records.is_empty());
}

#[tokio::test]
async fn over_a_real_socket_hostile_frames_leave_the_connection_open() {
    // GIVEN alice and bob in arena on ripple dev
    let server = start_dev(DevOptions::default()).await.unwrap();
    let mut alice = WsClient::connect(&format!("{}/?user=alice&channel=arena", server.ws_url()))
        .await
        .unwrap();
    let mut bob = WsClient::connect(&format!("{}/?user=bob&channel=arena", server.ws_url()))
        .await
        .unwrap();
    // WHEN alice sends every hostile frame
    for (name, frame, code) in hostile_frames() {
        alice.send(&frame).await.unwrap();
        let reply = loop {
            let f = alice
                .next_frame()
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{name}: socket closed"));
            if f["type"] == "error" {
                break f;
            }
        };
        // THEN each gets its code
        assert_eq!(reply["code"], code, "{name}");
    }
    // AND the socket still carries a good frame to bob, who saw no error and nothing else
    alice
        .send(r#"{"action":"message","channel":"arena","text":"survived"}"#)
        .await
        .unwrap();
    let got = bob
        .wait_for_event(|e| e["type"] == "message")
        .await
        .unwrap();
    assert_eq!(got["text"], "survived");
    server.shutdown().await;
}

#[tokio::test]
async fn the_extreme_numbers_a_frame_may_carry_are_stored_as_sent() {
    // GIVEN alice in arena
    let table = TestTable::new().await.unwrap();
    let connect = ConnectState::new(table.store.clone(), table.settings.clone());
    let ingest = IngestState::new(table.store.clone(), table.settings.clone());
    let q = vec![
        ("user".into(), "alice".into()),
        ("channel".into(), "arena".into()),
    ];
    connect::handle(&connect, connect_event(&ctx("A"), &[], &q, 1).unwrap()).await;
    // WHEN she sends the largest and smallest magnitudes the protocol accepts (the store writes
    // them as `f64` Display text: 126 digits, and 130 decimals)
    let alice_only = ["alice".to_owned()];
    for (x, y, z, seq) in [
        ("9.999999999999998e125", "-1e-130", "-0.0", "1"),
        (
            "-9.999999999999998e125",
            "1e-130",
            "1.7976931348623157e-5",
            "18446744073709551615",
        ),
    ] {
        let frame = format!(
            r#"{{"action":"position","channel":"arena","x":{x},"y":{y},"z":{z},"seq":{seq}}}"#
        );
        let response = ingest::handle(&ingest, message_event(&ctx("A"), &frame, 2).unwrap()).await;
        // THEN DynamoDB takes them and they read back unchanged
        assert_eq!(response.status_code, 200, "{frame}");
        assert!(response.body.is_none(), "{frame}: {:?}", response.body);
        let stored = table
            .store
            .positions_of("arena", &alice_only)
            .await
            .unwrap();
        let got = stored.first().expect("stored");
        let want = |s: &str| s.parse::<f64>().unwrap();
        assert_eq!(
            (got.x, got.y, got.z),
            (want(x), want(y), want(z)),
            "{frame}"
        );
        assert_eq!(got.seq.to_string(), seq);
    }
}

#[tokio::test]
async fn over_a_real_socket_unstorable_numbers_and_repeated_keys_write_nothing() {
    // GIVEN alice and bob in arena on ripple dev
    let server = start_dev(DevOptions::default()).await.unwrap();
    let mut alice = WsClient::connect(&format!("{}/?user=alice&channel=arena", server.ws_url()))
        .await
        .unwrap();
    let mut bob = WsClient::connect(&format!("{}/?user=bob&channel=arena", server.ws_url()))
        .await
        .unwrap();
    let p = |rest: &str| format!(r#"{{"action":"position","channel":"arena",{rest}}}"#);
    // WHEN alice sends positions DynamoDB cannot store, or that repeat a key, each with a `seq`
    // above the valid one she sends last
    for (name, frame) in [
        (
            "x above DynamoDB's range",
            p(r#""x":1e300,"y":0,"seq":100"#),
        ),
        (
            "x below DynamoDB's range",
            p(r#""x":1e-200,"y":0,"seq":101"#),
        ),
        ("seq repeated", p(r#""x":1,"y":0,"seq":102,"seq":103"#)),
        (
            "key repeated inside data",
            p(r#""x":1,"y":0,"seq":104,"data":{"k":1,"k":2}"#),
        ),
    ] {
        alice.send(&frame).await.unwrap();
        let reply = loop {
            let f = alice
                .next_frame()
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{name}: socket closed"));
            // Skip what fanout sends (the snapshot, bob's join); API Gateway's internal error
            // has no `type`.
            if f["type"] != "events" && f["type"] != "snapshot" {
                break f;
            }
        };
        // THEN each gets an error frame with bad_request (not API Gateway's internal error)
        assert_eq!(reply["type"], "error", "{name}: {reply}");
        assert_eq!(reply["code"], "bad_request", "{name}: {reply}");
    }
    // AND none was written: alice has no stored position in arena
    let alice_only = ["alice".to_owned()];
    let stored = server
        .store
        .positions_of("arena", &alice_only)
        .await
        .unwrap();
    assert!(stored.is_empty(), "{stored:?}");
    // AND the socket still carries a valid position to bob, and it is stored (a refused frame
    // stored with a higher seq would have made this one stale)
    alice.send(&p(r#""x":7,"y":8,"seq":1"#)).await.unwrap();
    let got = bob
        .wait_for_event(|e| e["type"] == "position")
        .await
        .unwrap();
    assert_eq!(
        (got["x"].as_f64(), got["seq"].as_u64()),
        (Some(7.0), Some(1))
    );
    let stored = server
        .store
        .positions_of("arena", &alice_only)
        .await
        .unwrap();
    assert_eq!(stored.iter().map(|s| s.seq).collect::<Vec<_>>(), [1]);
    server.shutdown().await;
}

#[tokio::test]
async fn publishing_above_the_rate_limit_is_refused_and_not_written() {
    // GIVEN alice in arena with a limit of 2 positions a second
    let mut table = TestTable::new().await.unwrap();
    let mut settings = table.settings.clone();
    settings.position_rate = 2;
    let connect = ConnectState::new(table.store.clone(), settings.clone());
    let ingest = IngestState::new(table.store.clone(), settings);
    let q = vec![
        ("user".into(), "alice".into()),
        ("channel".into(), "arena".into()),
    ];
    connect::handle(&connect, connect_event(&ctx("A"), &[], &q, 1).unwrap()).await;
    table.take_stream_event().await.unwrap();
    // WHEN she sends 40 positions as fast as she can
    let mut limited = 0;
    for seq in 1..=40 {
        let frame =
            format!(r#"{{"action":"position","channel":"arena","x":{seq},"y":0,"seq":{seq}}}"#);
        let response = ingest::handle(&ingest, message_event(&ctx("A"), &frame, 2).unwrap()).await;
        assert_eq!(response.status_code, 200);
        if let Some(Body::Text(body)) = response.body {
            assert!(body.contains(r#""code":"rate_limited""#), "{body}");
            limited += 1;
        }
    }
    // THEN most are refused with rate_limited, and exactly the accepted ones were written
    assert!(limited >= 20, "only {limited} of 40 refused");
    let written = table.take_stream_event().await.unwrap().records.len();
    assert_eq!(written, 40 - limited);
}

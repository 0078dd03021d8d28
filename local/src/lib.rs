//! The `ripple` command's library: the local stack that plays AWS on one machine.
//!
//! | module | what it holds |
//! |---|---|
//! | [`apigw`] | API Gateway WebSocket proxy events in the JSON shape API Gateway sends |
//! | [`bench`] | `ripple bench fanout`, `e2e`, `isolation`, `cold-start`: cost and speed, measured |
//! | [`connections_server`] | a loopback `@connections` server that counts or records posts (benchmarks, tests) |
//! | [`dev`] | `ripple dev`: gateway, `@connections`, stream trigger, fault injection, metrics |
//! | [`dynamodb_local`] | installing and starting DynamoDB Local |
//! | [`loopback_http`] | the smallest HTTP/1.1 client: `ripple dev`'s controls and counters (benches, tests) |
//! | [`publish`] | `ripple publish`: a message or position into a channel as the reserved sender `server` |
//! | [`stream`] | reading a table's stream as Lambda's event source mapping does, in Lambda's JSON shape |
//! | [`wsclient`] | a WebSocket client of Ripple's protocol (`ripple smoke`, the tests) |
//! | [`seed`] | connections and memberships written straight into the table (benchmarks, tests) |
//! | [`smoke`] | `ripple smoke`: a one-command check of a running stack |
//! | [`runtime_api`] | a loopback Lambda Runtime API and a function binary behind it (packaged test, `bench cold-start`) |
//! | [`redrive`] | `ripple replay` and `ripple redrive`: stream batches through fanout again |

pub mod apigw;
pub mod bench;
pub mod connections_server;
pub mod dev;
pub mod dynamodb_local;
pub mod loopback_http;
pub mod publish;
pub mod redrive;
pub mod runtime_api;
pub mod seed;
pub mod smoke;
pub mod stream;
pub mod wsclient;

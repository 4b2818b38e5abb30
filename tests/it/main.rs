//! The integration tests: the real server on a port-0 listener, real PostgreSQL, the QBO
//! simulator over real HTTP, and the generated gRPC client over a real socket.

mod auth;
mod chaos;
mod connections;
mod connections_disconnect;
mod connections_realm;
mod connections_support;
mod ctl;
mod customers;
mod customers_batch;
mod dev;
mod health;
mod helm;
mod helpers;
mod hostile;
mod jobs;
mod links;
mod logs;
mod metrics;
mod migrations;
mod push;
mod push_support;
mod qbo_auth;
mod qbo_client;
mod qbo_create;
mod qbo_harness;
mod qbo_limiter;
mod qbo_limits_live;
mod qbo_pager;
mod reflection;
mod server;
mod sync;
mod tls;
mod traces;
mod validation;
mod webhooks;

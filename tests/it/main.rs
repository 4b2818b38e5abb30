//! The integration tests: the real server on a port-0 listener, real PostgreSQL, the QBO
//! simulator over real HTTP, and the generated gRPC client over a real socket.

mod customers;
mod health;
mod helpers;
mod migrations;
mod reflection;
mod server;
mod validation;

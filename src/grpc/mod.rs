//! gRPC handlers.

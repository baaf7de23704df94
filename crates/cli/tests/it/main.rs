//! Integration tests: the real `warden` binary in front of real upstreams.
//! One test binary (faster to link); modules by topic.

mod harness;

mod approvals;
mod audit;
mod authz;
mod credentials;
mod edge;
mod eras;
mod faults;
mod federation;
mod guard_stream;
mod guards;
mod identity;
mod limits;
mod limits_redis;
mod modern;
mod oauth_sdk;
mod observability;
mod peers;
mod registry;
mod sandbox;
mod tls;
mod transports;
mod wire;

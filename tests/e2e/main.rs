//! End-to-end tests: each drives the real `lab` binary in its own temp folder, on free ports.

mod book_style;
mod browser;
mod command_service;
mod config_errors;
mod docker;
mod export;
mod images;
mod interop;
mod lifecycle;
mod load;
mod observe;
mod protocols;
mod proxy;
mod scaling;
mod util;

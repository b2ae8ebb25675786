//! The hub in-process on ports 0: what it ingests ([`ingest`]), the pages it serves
//! ([`pages`]), and what keeps it standing ([`limits`]: taken ports, hostile queries, web pages,
//! retention, alerts across restarts). [`util`] starts hubs and calls them.

mod ingest;
mod limits;
mod pages;
mod util;

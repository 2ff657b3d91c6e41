//! HOT template engine (work in progress: see issue 3).

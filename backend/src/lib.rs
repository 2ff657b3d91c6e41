//! Stack backends (work in progress: see issue 4).

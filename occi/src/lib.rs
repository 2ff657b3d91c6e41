//! OCCI Core model and its HTTP renderings (work in progress: see issue 2).

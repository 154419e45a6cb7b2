"""Find what a package ships. See `qackage.analyze.base` for the facet interface."""

"""Tools beside the library: the step-time bench and the judge server."""

"""A real local service topology with fault injection: the demo and the end-to-end proving ground."""

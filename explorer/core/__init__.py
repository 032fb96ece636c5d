"""Infrastructure of the app: bundle discovery and loading, the torch thread, memory, shared controls, figures."""

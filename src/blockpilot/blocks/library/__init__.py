"""Built-in blocks. Each module is imported lazily by the registry; provider SDKs are imported
inside ``run`` so listing blocks stays cheap."""

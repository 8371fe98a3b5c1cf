"""The local stack: emulated AWS (moto) and its workarounds, the templates on it, the local runner, the lab."""

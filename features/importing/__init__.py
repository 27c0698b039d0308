"""Importing real exports (registries, Wind/CSMAR/Orbis, CNIPA, MIIT lists) into a contract dataset."""

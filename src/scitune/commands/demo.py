"""`scitune demo`: placeholder wired to the smallest end-to-end path until the demo issue lands."""

"""Reading and writing files safely: atomic writes and output claims (`atomic`), bounded
readers for JSON, JSONL, YAML and text (`read`)."""

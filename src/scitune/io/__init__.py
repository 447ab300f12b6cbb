"""Reading and writing files safely: atomic writes (`atomic`), where a command may write
(`outputs`), bounded readers for JSON, JSONL, YAML and text (`read`), images within limits
(`images`)."""

"""The stage runner: align and instruct stages from a recipe, resumable, distributed, observable."""

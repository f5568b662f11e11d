"""Models: architecture values and parameter math, loading teachers, surgery, speed, identity."""

"""Planning writes: the tags that register, assign, unassign, deregister and deprecate."""

"""Activity registration: every path moves the assignment's last contact forward."""

"""The central callguard server: one review, one rules file and live alerts for a whole
call centre."""

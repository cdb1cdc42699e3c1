"""Screens: live/watch (one screen, two modes), replay, and the dialogs they open."""

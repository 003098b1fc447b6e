"""Adapters that hand Mentorly's tools to other frameworks."""

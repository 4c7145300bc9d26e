"""Pandera schemas for a normalised call row and the API's request payload."""

"""Publish: the workbooks and files the project writes for people (xlsx)."""

"""Stock django-oauth-toolkit: a startproject-style project with DOT's TokenView at /o/token/."""

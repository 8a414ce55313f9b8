"""What the tests share: fakes and real servers on loopback, payloads, files and checks.

Test modules import from here (`from tests.support.fake_api import FakeApis`) and take shared
fixtures from the conftest.py files; they never import each other.
"""

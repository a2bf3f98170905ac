"""The service layer: :class:`~jianyi_flow.service.flow.Flow`, the commands portals call.

It loads a suggestion from a store, runs the guards (campaign phases, permissions), asks the
domain's workflow and deadlines what the command does, and commits the result.
"""

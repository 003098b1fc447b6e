"""LTI 1.3: launches from learning platforms (Moodle, Canvas, Blackboard, Brightspace, Open edX).

- ``platforms``: registered platforms (issuer, client id, endpoints, deployments), per tenant;
- ``keys``: the tool's own RSA key pairs (published at ``/lti/jwks``, rotatable);
- ``courses``: a platform's course (``context.id``) and the knowledge collection it owns;
- ``sessions``: the bearer token a verified launch gives the launched page (no cookie);
- ``launch``: OIDC login initiation and the ``id_token`` checks;
- ``deep_linking``: the signed content-item response for the platform's tool picker.

The routes are ``assistant.api.lti``; the pages' files come from the composition root.
"""

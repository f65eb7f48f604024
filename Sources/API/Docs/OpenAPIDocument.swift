/// The OpenAPI 3.1 document served at /openapi.json; docs/openapi.json is the same text (a test checks that they are equal).
enum OpenAPIDocument {
    static let json = ##"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "Tally API",
    "version": "1",
    "summary": "Event-sourced multi-tenant API: tenants, keys, workflows and runs.",
    "description": "Operator routes under /v1/admin take the operator token; tenant routes under /v1 take a tenant API key (tly_...) and are limited per plan (requests per second per key and per tenant, monthly API calls), with the RateLimit fields on their answers (all but 401, 500 and 503). JSON is written with sorted keys; ids are lower-case UUIDs; timestamps are RFC 3339 in UTC with milliseconds; optional fields without a value are absent (never null). Request bodies must be application/json objects of at most 1,048,576 bytes; unknown fields are 422. Every error is an RFC 9457 problem document (application/problem+json); a known path with another method is 405 with Allow, an unknown path 404. Every response carries X-Request-Id."
  },
  "tags": [
    {
      "name": "Operations",
      "description": "Health, readiness, metrics, this document, webhooks."
    },
    {
      "name": "Tenants",
      "description": "Operator: tenants and their plans."
    },
    {
      "name": "Keys",
      "description": "Operator: tenants' API keys."
    },
    {
      "name": "Projections",
      "description": "Operator: read-model status."
    },
    {
      "name": "Flow keys",
      "description": "Flow control per vendor key: what the workers' claims see, and the limits the operator sets."
    },
    {
      "name": "Tenant",
      "description": "The calling tenant and its key."
    },
    {
      "name": "Usage",
      "description": "Metered usage per billing period."
    },
    {
      "name": "Vendor secrets",
      "description": "The tenant's vendor API keys."
    },
    {
      "name": "Workflows",
      "description": "Email-waterfall workflows."
    },
    {
      "name": "Runs",
      "description": "Runs of workflows."
    },
    {
      "name": "Events",
      "description": "Live progress as Server-Sent Events."
    }
  ],
  "paths": {
    "/healthz": {
      "get": {
        "tags": [
          "Operations"
        ],
        "summary": "Liveness",
        "description": "200 while the process runs; touches nothing else.",
        "operationId": "getHealth",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [],
        "responses": {
          "200": {
            "description": "The process is alive.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Health"
                },
                "example": {
                  "status": "ok"
                }
              }
            }
          }
        }
      }
    },
    "/readyz": {
      "get": {
        "tags": [
          "Operations"
        ],
        "summary": "Readiness",
        "description": "200 when the database answers and every projection runs within the lag threshold (parked streams are counted, not failed on); otherwise 503 not-ready naming the projections behind or stopped.",
        "operationId": "getReadiness",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [],
        "responses": {
          "200": {
            "description": "Ready.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Readiness"
                },
                "example": {
                  "status": "ready",
                  "database": "ok",
                  "projections": "ok",
                  "parkedStreams": 0
                }
              }
            }
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/metrics": {
      "get": {
        "tags": [
          "Operations"
        ],
        "summary": "Prometheus metrics",
        "description": "The service's metrics in the Prometheus text exposition format (version 0.0.4): requests by route, method and status, latencies, key-cache hits, rate limiting, projection lag.",
        "operationId": "getMetrics",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [],
        "responses": {
          "200": {
            "description": "The metrics.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "text/plain": {
                "schema": {
                  "type": "string",
                  "description": "Content-Type: text/plain; version=0.0.4; charset=utf-8"
                }
              }
            }
          }
        }
      }
    },
    "/openapi.json": {
      "get": {
        "tags": [
          "Operations"
        ],
        "summary": "This OpenAPI document",
        "description": "The OpenAPI 3.1 document of this API (the same text as docs/openapi.json in the repository).",
        "operationId": "getOpenAPIDocument",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [],
        "responses": {
          "200": {
            "description": "The OpenAPI document.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          }
        }
      }
    },
    "/webhooks/stripe": {
      "post": {
        "tags": [
          "Operations"
        ],
        "summary": "Stripe webhook",
        "description": "Receives the events of a Stripe webhook endpoint (configure TALLY_STRIPE_WEBHOOK_SECRETS; without it every delivery is 503 stripe-webhooks-not-configured). Authenticated by Stripe-Signature over the raw body, not by a bearer token; no Idempotency-Key handling applies: each Stripe event id is applied at most once, in the transaction that appends its events. customer.subscription.created and updated change the tenant's plan (the plan owning the subscription items' prices) and link its Stripe customer; paused suspends the tenant, resumed reinstates it (unless the operator suspended it); deleted moves it to free. An event older (by its created second) than the newest Stripe change applied to the tenant is stale and changes nothing. The tenant is metadata.tally_tenant_id, else metadata.tally_tenant (slug), else the tenant linked to the customer. Other event types, unknown tenants and unknown prices are acknowledged and recorded and change nothing.",
        "operationId": "receiveStripeWebhook",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          },
          {
            "name": "Stripe-Signature",
            "in": "header",
            "required": true,
            "description": "t=<unix seconds>,v1=<hex>[,v1=<hex>...]: the hex HMAC-SHA-256 of \"<t>.\" + the raw body under an endpoint secret; t must be within 300 s of now. Other schemes (v0) are ignored.",
            "schema": {
              "type": "string"
            },
            "example": "t=1790000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"
          }
        ],
        "security": [],
        "requestBody": {
          "required": true,
          "description": "A Stripe event, exactly as Stripe sent it (the signature covers the raw bytes).",
          "content": {
            "application/json": {
              "schema": {
                "type": "object",
                "required": [
                  "id",
                  "type",
                  "created"
                ],
                "properties": {
                  "id": {
                    "type": "string",
                    "example": "evt_1NG8Du2eZvKYlo2CUI79vXWy"
                  },
                  "type": {
                    "type": "string",
                    "example": "customer.subscription.updated"
                  },
                  "created": {
                    "type": "integer",
                    "description": "Unix seconds; last writer wins by it."
                  },
                  "data": {
                    "type": "object",
                    "properties": {
                      "object": {
                        "type": "object",
                        "description": "The subscription: id, customer, metadata, items.data[].price.id."
                      }
                    }
                  }
                },
                "additionalProperties": true
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "Accepted: applied, unchanged, stale or ignored (outcome), or a repeated delivery (duplicate), which changed nothing.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "required": [
                    "received"
                  ],
                  "additionalProperties": false,
                  "properties": {
                    "received": {
                      "const": true
                    },
                    "duplicate": {
                      "const": true,
                      "description": "The event id was received before; nothing changed."
                    },
                    "outcome": {
                      "type": "string",
                      "description": "applied, unchanged, stale, ignored, or ignored: <why>."
                    }
                  }
                },
                "example": {
                  "received": true,
                  "outcome": "applied"
                }
              }
            }
          },
          "400": {
            "description": "Refused, nothing recorded: the Stripe-Signature header is missing or malformed (malformed-stripe-signature); no v1 signature matches under a configured secret, or its timestamp is more than 300 s away from now (invalid-stripe-signature); the signed body is not JSON (malformed-json) or not a Stripe event (malformed-stripe-event).",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/problem+json": {
                "schema": {
                  "$ref": "#/components/schemas/Problem"
                },
                "example": {
                  "type": "https://tally.dev/problems/invalid-stripe-signature",
                  "title": "Invalid Stripe signature",
                  "status": 400,
                  "detail": "No v1 signature matches the body under a configured webhook secret."
                }
              }
            }
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "description": "No webhook secret is configured (stripe-webhooks-not-configured); Stripe retries.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/problem+json": {
                "schema": {
                  "$ref": "#/components/schemas/Problem"
                },
                "example": {
                  "type": "https://tally.dev/problems/stripe-webhooks-not-configured",
                  "title": "Stripe webhooks are not configured",
                  "status": 503,
                  "detail": "Set TALLY_STRIPE_WEBHOOK_SECRETS to the endpoint's signing secret (whsec_...) and restart; until then every delivery is refused."
                }
              }
            }
          }
        }
      }
    },
    "/v1/admin/tenants": {
      "post": {
        "tags": [
          "Tenants"
        ],
        "summary": "Create a tenant",
        "description": "Creates an active tenant. Its id derives from the slug, so a slug can be used once only: a taken slug is 409 slug-taken. An unknown plan is 422.",
        "operationId": "createTenant",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          },
          {
            "$ref": "#/components/parameters/Idempotency-Key"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/CreateTenant"
              }
            }
          }
        },
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "201": {
            "description": "The tenant was created.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "Idempotent-Replayed": {
                "$ref": "#/components/headers/Idempotent-Replayed"
              },
              "Location": {
                "description": "Where the created or started resource can be read.",
                "required": true,
                "schema": {
                  "type": "string"
                },
                "example": "/v1/admin/tenants/0b7e7a4e-3c8e-4f2a-9d51-6a7d2f0c1e35"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Tenant"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      },
      "get": {
        "tags": [
          "Tenants"
        ],
        "summary": "List tenants",
        "description": "Every tenant, oldest first, a page at a time.",
        "operationId": "listTenants",
        "parameters": [
          {
            "name": "status",
            "in": "query",
            "required": false,
            "description": "Only tenants with this status; another value is 422.",
            "schema": {
              "$ref": "#/components/schemas/TenantStatus"
            }
          },
          {
            "$ref": "#/components/parameters/limit"
          },
          {
            "$ref": "#/components/parameters/cursor"
          },
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "A page of tenants.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/TenantList"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/admin/tenants/{id}": {
      "parameters": [
        {
          "$ref": "#/components/parameters/tenantId"
        }
      ],
      "get": {
        "tags": [
          "Tenants"
        ],
        "summary": "Get a tenant",
        "description": "One tenant. 503 stream-parked when some of its history could not be applied (a parked stream).",
        "operationId": "getTenant",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "The tenant.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Tenant"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/admin/tenants/{id}/suspend": {
      "parameters": [
        {
          "$ref": "#/components/parameters/tenantId"
        }
      ],
      "post": {
        "tags": [
          "Tenants"
        ],
        "summary": "Suspend a tenant",
        "description": "Suspends the tenant: its keys stop working (401). Suspending a suspended tenant changes nothing; an erased tenant is 409. The body is required (an empty object is fine).",
        "operationId": "suspendTenant",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          },
          {
            "$ref": "#/components/parameters/Idempotency-Key"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/SuspendTenant"
              }
            }
          }
        },
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "The tenant as it is now.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "Idempotent-Replayed": {
                "$ref": "#/components/headers/Idempotent-Replayed"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Tenant"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/admin/tenants/{id}/reinstate": {
      "parameters": [
        {
          "$ref": "#/components/parameters/tenantId"
        }
      ],
      "post": {
        "tags": [
          "Tenants"
        ],
        "summary": "Reinstate a tenant",
        "description": "Makes a suspended tenant active again. Reinstating an active tenant changes nothing; an erased tenant is 409. No body is read.",
        "operationId": "reinstateTenant",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          },
          {
            "$ref": "#/components/parameters/Idempotency-Key"
          }
        ],
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "The tenant as it is now.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "Idempotent-Replayed": {
                "$ref": "#/components/headers/Idempotent-Replayed"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Tenant"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/admin/tenants/{id}/erase": {
      "parameters": [
        {
          "$ref": "#/components/parameters/tenantId"
        }
      ],
      "post": {
        "tags": [
          "Tenants"
        ],
        "summary": "Erase a tenant",
        "description": "Crypto-shredding: destroys the tenant's data keys, then appends TenantErased. Every vendor secret sealed for the tenant, in the log, its replicas and backups, is unreadable from then on; the tenant's API keys stop working. Irreversible. An erased tenant is 409.",
        "operationId": "eraseTenant",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          },
          {
            "$ref": "#/components/parameters/Idempotency-Key"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/EraseTenant"
              }
            }
          }
        },
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "The tenant as it is now.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "Idempotent-Replayed": {
                "$ref": "#/components/headers/Idempotent-Replayed"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Tenant"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/admin/tenants/{id}/plan": {
      "parameters": [
        {
          "$ref": "#/components/parameters/tenantId"
        }
      ],
      "put": {
        "tags": [
          "Tenants"
        ],
        "summary": "Change a tenant's plan",
        "description": "Moves the tenant to another plan, effective now. The same plan changes nothing; an unknown plan is 422; an erased tenant is 409.",
        "operationId": "changeTenantPlan",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/ChangePlan"
              }
            }
          }
        },
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "The tenant as it is now.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Tenant"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/admin/tenants/{id}/keys": {
      "parameters": [
        {
          "$ref": "#/components/parameters/tenantId"
        }
      ],
      "post": {
        "tags": [
          "Keys"
        ],
        "summary": "Issue an API key",
        "description": "Issues a key to an active tenant (another status is 409). The plaintext key is in this response only: a repeat with the same Idempotency-Key gets 409 idempotent-secret-not-replayed, not the key.",
        "operationId": "issueKey",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          },
          {
            "$ref": "#/components/parameters/Idempotency-Key"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/IssueKey"
              }
            }
          }
        },
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "201": {
            "description": "The key was issued.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "Idempotent-Replayed": {
                "$ref": "#/components/headers/Idempotent-Replayed"
              },
              "Location": {
                "description": "Where the created or started resource can be read.",
                "required": true,
                "schema": {
                  "type": "string"
                },
                "example": "/v1/admin/tenants/0b7e7a4e-3c8e-4f2a-9d51-6a7d2f0c1e35/keys/0b7e7a4e-3c8e-4f2a-9d51-6a7d2f0c1e35"
              },
              "Cache-Control": {
                "$ref": "#/components/headers/Cache-Control"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/IssuedKey"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      },
      "get": {
        "tags": [
          "Keys"
        ],
        "summary": "List a tenant's keys",
        "description": "Every key of the tenant, oldest first, without plaintext (not paginated).",
        "operationId": "listKeys",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "The keys.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/KeyList"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/admin/tenants/{id}/keys/{keyId}": {
      "parameters": [
        {
          "$ref": "#/components/parameters/tenantId"
        },
        {
          "$ref": "#/components/parameters/keyId"
        }
      ],
      "delete": {
        "tags": [
          "Keys"
        ],
        "summary": "Revoke an API key",
        "description": "Revokes the key at once (a rotated key's grace period ends too). Revoking a revoked key changes nothing.",
        "operationId": "revokeKey",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "204": {
            "description": "The key is revoked.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/admin/tenants/{id}/keys/{keyId}/rotate": {
      "parameters": [
        {
          "$ref": "#/components/parameters/tenantId"
        },
        {
          "$ref": "#/components/parameters/keyId"
        }
      ],
      "post": {
        "tags": [
          "Keys"
        ],
        "summary": "Rotate an API key",
        "description": "Issues a replacement (same name and expiry) and marks the key rotated: it keeps working until the grace period ends. Only an active key can be rotated (409 otherwise). The body is required (an empty object is fine). The plaintext key is in this response only: a repeat with the same Idempotency-Key gets 409 idempotent-secret-not-replayed.",
        "operationId": "rotateKey",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          },
          {
            "$ref": "#/components/parameters/Idempotency-Key"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/RotateKey"
              }
            }
          }
        },
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "201": {
            "description": "The replacement key.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "Idempotent-Replayed": {
                "$ref": "#/components/headers/Idempotent-Replayed"
              },
              "Cache-Control": {
                "$ref": "#/components/headers/Cache-Control"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/KeyRotation"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/admin/projections": {
      "get": {
        "tags": [
          "Projections"
        ],
        "summary": "Projection status",
        "description": "Where each read model is: state, position, events applied and lag.",
        "operationId": "listProjections",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "Every projection.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ProjectionStatusList"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/admin/parked-streams": {
      "get": {
        "tags": [
          "Projections"
        ],
        "summary": "Parked streams",
        "description": "Every stream a reader (a projection, or the workers' dispatcher) could not apply, with the event and the error. Reads of such a resource answer 503 stream-parked until it is applied.",
        "operationId": "listParkedStreams",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "Every parked stream, oldest first.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ParkedStreamList"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/admin/parked-streams/retry": {
      "post": {
        "tags": [
          "Projections"
        ],
        "summary": "Retry parked streams",
        "description": "Asks the readers to apply their parked streams again, each in version order (as tally projections retry does). Without reader, every reader's; GET /v1/admin/parked-streams shows the outcome.",
        "operationId": "retryParkedStreams",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          },
          {
            "$ref": "#/components/parameters/Idempotency-Key"
          },
          {
            "name": "reader",
            "in": "query",
            "required": false,
            "description": "Only these readers (repeatable): a projection's name or dispatcher.",
            "schema": {
              "type": "string"
            }
          }
        ],
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "202": {
            "description": "The streams asked for; the leading readers try within about a second.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "Idempotent-Replayed": {
                "$ref": "#/components/headers/Idempotent-Replayed"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ParkedStreamList"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/admin/flow-keys": {
      "get": {
        "tags": [
          "Flow keys"
        ],
        "summary": "Flow control per vendor key (operator)",
        "description": "Every tenant's vendor keys as flow control sees them (see GET /v1/flow-keys), with tenantId.",
        "operationId": "listOperatorFlowKeys",
        "parameters": [
          {
            "name": "tenantId",
            "in": "query",
            "required": false,
            "description": "Only this tenant's; not a UUID is 422.",
            "schema": {
              "type": "string",
              "format": "uuid"
            }
          },
          {
            "name": "vendor",
            "in": "query",
            "required": false,
            "description": "Only this vendor's; another value is 422.",
            "schema": {
              "$ref": "#/components/schemas/Vendor"
            }
          },
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "Flow keys, by tenant and vendor.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/FlowKeyList"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/admin/flow-limits": {
      "get": {
        "tags": [
          "Flow keys"
        ],
        "summary": "Flow limits",
        "description": "The limits the workers apply: built-in, vendor defaults and tenant overrides.",
        "operationId": "listFlowLimits",
        "parameters": [
          {
            "name": "tenantId",
            "in": "query",
            "required": false,
            "description": "Only this tenant's; not a UUID is 422.",
            "schema": {
              "type": "string",
              "format": "uuid"
            }
          },
          {
            "name": "vendor",
            "in": "query",
            "required": false,
            "description": "Only this vendor's; another value is 422.",
            "schema": {
              "$ref": "#/components/schemas/Vendor"
            }
          },
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "Flow limits.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/FlowLimitsList"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/admin/flow-limits/{vendor}": {
      "parameters": [
        {
          "$ref": "#/components/parameters/vendor"
        }
      ],
      "put": {
        "tags": [
          "Flow keys"
        ],
        "summary": "Set a vendor's default flow limits",
        "description": "Appends FlowLimitsSet on flowlimits-{vendor}: the limits of every tenant's keys of the vendor that has no override. The workers apply it to the limits their claims check; GET /v1/admin/flow-limits shows it once they have.",
        "operationId": "setDefaultFlowLimits",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/SetFlowLimits"
              }
            }
          }
        },
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "What was set.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/FlowLimits"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/admin/tenants/{id}/flow-limits/{vendor}": {
      "parameters": [
        {
          "$ref": "#/components/parameters/tenantId"
        },
        {
          "$ref": "#/components/parameters/vendor"
        }
      ],
      "put": {
        "tags": [
          "Flow keys"
        ],
        "summary": "Override a tenant's flow limits",
        "description": "Appends FlowLimitsSet on flowlimits-{vendor}:{tenantId}: the limits of this tenant's key of the vendor. An unknown tenant is 404, an erased one 409. The workers apply it to the limits their claims check; GET /v1/admin/flow-limits shows it once they have.",
        "operationId": "setTenantFlowLimits",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/SetFlowLimits"
              }
            }
          }
        },
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "What was set.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/FlowLimits"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      },
      "delete": {
        "tags": [
          "Flow keys"
        ],
        "summary": "Remove a tenant's flow-limit override",
        "description": "Appends FlowLimitsSet with nothing set: the tenant's key inherits the vendor default again. An unknown tenant is 404. The workers apply it to the limits their claims check; GET /v1/admin/flow-limits shows it once they have.",
        "operationId": "clearTenantFlowLimits",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "operatorToken": []
          }
        ],
        "responses": {
          "204": {
            "description": "The override is removed.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/tenant": {
      "get": {
        "tags": [
          "Tenant"
        ],
        "summary": "The calling tenant",
        "description": "The tenant of the calling key, its plan's limits, and its usage in the current billing period. 503 stream-parked when some of its history could not be applied (a parked stream).",
        "operationId": "getOwnTenant",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "200": {
            "description": "The tenant.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/TenantSelf"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/tenant/keys/rotate": {
      "post": {
        "tags": [
          "Tenant"
        ],
        "summary": "Rotate the calling key",
        "description": "Rotates the key this request authenticates with: a replacement is issued and the calling key keeps working until the grace period ends. A key already rotated (still in its grace period) is 409. The body is required (an empty object is fine). The plaintext key is in this response only: a repeat with the same Idempotency-Key gets 409 idempotent-secret-not-replayed.",
        "operationId": "rotateOwnKey",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          },
          {
            "$ref": "#/components/parameters/Idempotency-Key"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/RotateKey"
              }
            }
          }
        },
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "201": {
            "description": "The replacement key.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "Idempotent-Replayed": {
                "$ref": "#/components/headers/Idempotent-Replayed"
              },
              "Cache-Control": {
                "$ref": "#/components/headers/Cache-Control"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/KeyRotation"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/usage": {
      "get": {
        "tags": [
          "Usage"
        ],
        "summary": "Usage in a billing period",
        "description": "The tenant's meters in a billing period (the current one by default). With the period's charges: the usage priced by the plan in effect for each part of the period. 503 stream-parked when some of its history could not be applied (a parked stream).",
        "operationId": "getUsage",
        "parameters": [
          {
            "name": "period",
            "in": "query",
            "required": false,
            "description": "A month written YYYY-MM (UTC), from 2000-01 to the current month; the current month when absent; anything else is 422.",
            "schema": {
              "type": "string",
              "pattern": "^[0-9]{4}-[0-9]{2}$"
            },
            "example": "2025-01"
          },
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "200": {
            "description": "The usage.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/UsageStatement"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/vendor-secrets": {
      "get": {
        "tags": [
          "Vendor secrets"
        ],
        "summary": "List vendor secrets",
        "description": "The tenant's vendor secrets, without the secrets themselves (not paginated). 503 stream-parked when some of its history could not be applied (a parked stream).",
        "operationId": "listVendorSecrets",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "200": {
            "description": "The vendor secrets.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/VendorSecretList"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/vendor-secrets/{vendor}": {
      "parameters": [
        {
          "$ref": "#/components/parameters/vendor"
        }
      ],
      "put": {
        "tags": [
          "Vendor secrets"
        ],
        "summary": "Store a vendor secret",
        "description": "Seals the tenant's key for a vendor with the tenant's data key (XChaCha20-Poly1305; tenant, vendor and secret version are the associated data) and appends it as VendorSecretSealed; the plaintext is never stored, logged or answered. Replacing a key increments secretVersion. 201 on the first store (or after a removal), 200 on a replacement; the answer is the metadata. An unknown vendor is 404; a server without a master key (TALLY_MASTER_KEY) answers 503 and stores nothing; an erased tenant is 409.",
        "operationId": "putVendorSecret",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "200": {
            "description": "The key was replaced; its metadata.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/VendorSecret"
                }
              }
            }
          },
          "201": {
            "description": "The key was stored; its metadata.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/VendorSecret"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        },
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/StoreVendorSecret"
              }
            }
          }
        }
      },
      "delete": {
        "tags": [
          "Vendor secrets"
        ],
        "summary": "Remove a vendor secret",
        "description": "Appends VendorSecretRemoved: runs stop using the key. 404 when the tenant has no key for the vendor (or removed it already). The sealed bytes stay in the log, which only grows; erasing the tenant makes them unreadable.",
        "operationId": "deleteVendorSecret",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "204": {
            "description": "Removed.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/flow-keys": {
      "get": {
        "tags": [
          "Flow keys"
        ],
        "summary": "Flow control per vendor key",
        "description": "The tenant's vendor keys as flow control sees them: state, limits in force with the use of each window, and the queue. Row-level security limits the answer to the tenant's own keys.",
        "operationId": "listFlowKeys",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "200": {
            "description": "The tenant's flow keys, by vendor.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/FlowKeyList"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/workflows": {
      "post": {
        "tags": [
          "Workflows"
        ],
        "summary": "Define a workflow",
        "description": "Defines an email-waterfall workflow: finders (prospeo, findymail) asked in order, optionally validated by zerobounce.",
        "operationId": "defineWorkflow",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          },
          {
            "$ref": "#/components/parameters/Idempotency-Key"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/DefineWorkflow"
              }
            }
          }
        },
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "201": {
            "description": "The workflow was defined.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "Idempotent-Replayed": {
                "$ref": "#/components/headers/Idempotent-Replayed"
              },
              "Location": {
                "description": "Where the created or started resource can be read.",
                "required": true,
                "schema": {
                  "type": "string"
                },
                "example": "/v1/workflows/0b7e7a4e-3c8e-4f2a-9d51-6a7d2f0c1e35"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Workflow"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      },
      "get": {
        "tags": [
          "Workflows"
        ],
        "summary": "List workflows",
        "description": "The tenant's workflows, oldest first, a page at a time.",
        "operationId": "listWorkflows",
        "parameters": [
          {
            "$ref": "#/components/parameters/limit"
          },
          {
            "$ref": "#/components/parameters/cursor"
          },
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "200": {
            "description": "A page of workflows.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/WorkflowList"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/workflows/{id}": {
      "parameters": [
        {
          "$ref": "#/components/parameters/workflowId"
        }
      ],
      "get": {
        "tags": [
          "Workflows"
        ],
        "summary": "Get a workflow",
        "description": "One of the tenant's workflows. 503 stream-parked when some of its history could not be applied (a parked stream).",
        "operationId": "getWorkflow",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "200": {
            "description": "The workflow.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Workflow"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/runs": {
      "post": {
        "tags": [
          "Runs"
        ],
        "summary": "Start runs",
        "description": "Starts one run (input) or a batch of up to 1,000 (inputs) of one of the tenant's workflows; an unknown workflowId is 422. Runs count against the plan's monthly runs: starting more than remain is 429 with violated-policies [\"runs\"].",
        "operationId": "startRuns",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          },
          {
            "$ref": "#/components/parameters/Idempotency-Key"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/StartRuns"
              }
            }
          }
        },
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "202": {
            "description": "The runs were started.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "Idempotent-Replayed": {
                "$ref": "#/components/headers/Idempotent-Replayed"
              },
              "Location": {
                "description": "/v1/runs/{id} for one run; /v1/runs?batchId={batchId} for a batch.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/StartedRuns"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      },
      "get": {
        "tags": [
          "Runs"
        ],
        "summary": "List runs",
        "description": "The tenant's runs, newest first, a page at a time, without their steps.",
        "operationId": "listRuns",
        "parameters": [
          {
            "name": "status",
            "in": "query",
            "required": false,
            "description": "Only runs with this status; another value is 422.",
            "schema": {
              "type": "string",
              "enum": [
                "cancelled",
                "failed",
                "not_found",
                "parked",
                "running",
                "succeeded"
              ]
            }
          },
          {
            "name": "workflowId",
            "in": "query",
            "required": false,
            "description": "Only runs of this workflow; not a UUID is 422.",
            "schema": {
              "type": "string",
              "format": "uuid"
            }
          },
          {
            "name": "batchId",
            "in": "query",
            "required": false,
            "description": "Only runs of this batch; not a UUID is 422.",
            "schema": {
              "type": "string",
              "format": "uuid"
            }
          },
          {
            "$ref": "#/components/parameters/limit"
          },
          {
            "$ref": "#/components/parameters/cursor"
          },
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "200": {
            "description": "A page of runs.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/RunList"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/runs/{id}": {
      "parameters": [
        {
          "$ref": "#/components/parameters/runId"
        }
      ],
      "get": {
        "tags": [
          "Runs"
        ],
        "summary": "Get a run",
        "description": "One run with every step attempt. 503 stream-parked when some of its history could not be applied (a parked stream).",
        "operationId": "getRun",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "200": {
            "description": "The run.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/runs/{id}/cancel": {
      "parameters": [
        {
          "$ref": "#/components/parameters/runId"
        }
      ],
      "post": {
        "tags": [
          "Runs"
        ],
        "summary": "Cancel a run",
        "description": "Cancels a running or parked run; a run that has ended is 409 run-finished. The body is optional: without a Content-Type header it is not read.",
        "operationId": "cancelRun",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          },
          {
            "$ref": "#/components/parameters/Idempotency-Key"
          }
        ],
        "requestBody": {
          "required": false,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/CancelRun"
              }
            }
          }
        },
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "200": {
            "description": "The run as it is now, with its steps.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "Idempotent-Replayed": {
                "$ref": "#/components/headers/Idempotent-Replayed"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/runs/{id}/retry": {
      "parameters": [
        {
          "$ref": "#/components/parameters/runId"
        }
      ],
      "post": {
        "tags": [
          "Runs"
        ],
        "summary": "Retry a run",
        "description": "Retries a failed run: appends StepScheduled for the step that failed last (its kind and vendor, attempt 1) as the run's next step, and the run is running again. A run that is not failed is 409 run-not-failed (nothing is appended); a concurrent change of the run is 409 conflict. The body is optional: without a Content-Type header it is not read; with one it must be an empty object.",
        "operationId": "retryRun",
        "parameters": [
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          },
          {
            "$ref": "#/components/parameters/Idempotency-Key"
          }
        ],
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "202": {
            "description": "The run as it is now (running, the new step scheduled), with its steps.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "Idempotent-Replayed": {
                "$ref": "#/components/headers/Idempotent-Replayed"
              }
            },
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Run"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "422": {
            "$ref": "#/components/responses/UnprocessableContent"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        },
        "requestBody": {
          "required": false,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/RetryRun"
              }
            }
          }
        }
      }
    },
    "/v1/runs/{id}/events": {
      "parameters": [
        {
          "$ref": "#/components/parameters/runId"
        }
      ],
      "get": {
        "tags": [
          "Events"
        ],
        "summary": "Live events of a run",
        "description": "The run's events as Server-Sent Events. Without Last-Event-ID the stream starts with the run's history; with it, right after that event. The stream stays open until the client or the server ends it. A key may hold the plan's keyStreams streams open at once and a tenant tenantStreams (per instance); beyond that 429 (key-streams, tenant-streams).",
        "operationId": "streamRunEvents",
        "parameters": [
          {
            "$ref": "#/components/parameters/Last-Event-ID"
          },
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "200": {
            "description": "The run's event stream.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "Cache-Control": {
                "$ref": "#/components/headers/Cache-Control"
              },
              "X-Accel-Buffering": {
                "$ref": "#/components/headers/X-Accel-Buffering"
              }
            },
            "content": {
              "text/event-stream": {
                "schema": {
                  "type": "string",
                  "description": "A Server-Sent Events stream. It opens with the comment \": stream open\"; then one frame per event: \"id:\" an opaque id (the event's feed position sealed for the tenant; send it back as Last-Event-ID), \"event:\" the event type, \"data:\" JSON {data, recordedAt, stream, type, version} with the event as the tenant sees it (ids in lower case, no workerId or fencingToken). Nothing is dropped: a client that does not read holds the stream back. A comment every 15 s keeps it open. It ends with \"event: end\", data {reason, detail}: unauthorized (the key was revoked, expired or rotated out, or the tenant suspended or erased), parked, lifetime (at most an hour), shutdown or error; then the response ends."
                },
                "example": ": stream open\n\nid: 48213/1207\nevent: RunStarted\ndata: {\"data\":{\"runId\":\"0b7e7a4e-3c8e-4f2a-9d51-6a7d2f0c1e35\"},\"position\":\"48213/1207\",\"recordedAt\":\"2025-01-31T09:30:00.000Z\",\"stream\":\"run-0b7e7a4e-3c8e-4f2a-9d51-6a7d2f0c1e35\",\"type\":\"RunStarted\",\"version\":1}\n\n"
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    },
    "/v1/events": {
      "get": {
        "tags": [
          "Events"
        ],
        "summary": "Live events of the tenant",
        "description": "Every run and workflow event of the tenant as Server-Sent Events. Without Last-Event-ID the stream starts now; with it, right after that event. A key may hold the plan's keyStreams streams open at once and a tenant tenantStreams (per instance); beyond that 429 (key-streams, tenant-streams).",
        "operationId": "streamTenantEvents",
        "parameters": [
          {
            "$ref": "#/components/parameters/Last-Event-ID"
          },
          {
            "$ref": "#/components/parameters/X-Request-Id"
          },
          {
            "$ref": "#/components/parameters/traceparent"
          }
        ],
        "security": [
          {
            "apiKey": []
          }
        ],
        "responses": {
          "200": {
            "description": "The tenant's event stream.",
            "headers": {
              "X-Request-Id": {
                "$ref": "#/components/headers/X-Request-Id"
              },
              "RateLimit": {
                "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "RateLimit-Policy": {
                "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
                "required": true,
                "schema": {
                  "type": "string"
                }
              },
              "Cache-Control": {
                "$ref": "#/components/headers/Cache-Control"
              },
              "X-Accel-Buffering": {
                "$ref": "#/components/headers/X-Accel-Buffering"
              }
            },
            "content": {
              "text/event-stream": {
                "schema": {
                  "type": "string",
                  "description": "A Server-Sent Events stream. It opens with the comment \": stream open\"; then one frame per event: \"id:\" an opaque id (the event's feed position sealed for the tenant; send it back as Last-Event-ID), \"event:\" the event type, \"data:\" JSON {data, recordedAt, stream, type, version} with the event as the tenant sees it (ids in lower case, no workerId or fencingToken). Nothing is dropped: a client that does not read holds the stream back. A comment every 15 s keeps it open. It ends with \"event: end\", data {reason, detail}: unauthorized (the key was revoked, expired or rotated out, or the tenant suspended or erased), parked, lifetime (at most an hour), shutdown or error; then the response ends."
                },
                "example": ": stream open\n\nid: 48213/1207\nevent: RunStarted\ndata: {\"data\":{\"runId\":\"0b7e7a4e-3c8e-4f2a-9d51-6a7d2f0c1e35\"},\"position\":\"48213/1207\",\"recordedAt\":\"2025-01-31T09:30:00.000Z\",\"stream\":\"run-0b7e7a4e-3c8e-4f2a-9d51-6a7d2f0c1e35\",\"type\":\"RunStarted\",\"version\":1}\n\n"
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "429": {
            "$ref": "#/components/responses/TooManyRequests"
          },
          "500": {
            "$ref": "#/components/responses/InternalServerError"
          },
          "503": {
            "$ref": "#/components/responses/ServiceUnavailable"
          }
        }
      }
    }
  },
  "components": {
    "schemas": {
      "Uuid": {
        "type": "string",
        "format": "uuid",
        "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        "description": "A UUID, always written in lower case.",
        "examples": [
          "0b7e7a4e-3c8e-4f2a-9d51-6a7d2f0c1e35"
        ]
      },
      "Timestamp": {
        "type": "string",
        "format": "date-time",
        "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
        "description": "An RFC 3339 timestamp in UTC with milliseconds.",
        "examples": [
          "2025-01-31T09:30:00.000Z"
        ]
      },
      "FeedPosition": {
        "type": "string",
        "pattern": "^[0-9]+/[0-9]+$",
        "description": "A position in the event feed: the writing transaction's id, a slash, and the event's global position.",
        "examples": [
          "48213/1207"
        ]
      },
      "Vendor": {
        "type": "string",
        "enum": [
          "prospeo",
          "findymail",
          "zerobounce"
        ],
        "description": "A vendor: prospeo and findymail find emails; zerobounce validates them."
      },
      "TenantStatus": {
        "type": "string",
        "enum": [
          "active",
          "suspended",
          "erased"
        ]
      },
      "Problem": {
        "type": "object",
        "description": "An RFC 9457 problem document; every error answer is one.",
        "required": [
          "type",
          "title",
          "status"
        ],
        "properties": {
          "type": {
            "type": "string",
            "format": "uri",
            "description": "https://tally.dev/problems/SLUG, the IANA quota-exceeded type, or about:blank."
          },
          "title": {
            "type": "string"
          },
          "status": {
            "type": "integer",
            "description": "The HTTP status code."
          },
          "detail": {
            "type": "string"
          },
          "instance": {
            "type": "string"
          },
          "errors": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/FieldError"
            },
            "minItems": 1
          },
          "violated-policies": {
            "type": "array",
            "items": {
              "type": "string"
            },
            "minItems": 1
          }
        }
      },
      "FieldError": {
        "type": "object",
        "description": "One invalid part of a request, located by pointer, parameter or header.",
        "required": [
          "detail"
        ],
        "properties": {
          "detail": {
            "type": "string"
          },
          "pointer": {
            "type": "string",
            "description": "A JSON pointer (RFC 6901) into the request body; \"\" is the whole body."
          },
          "parameter": {
            "type": "string",
            "description": "The query parameter at fault."
          },
          "header": {
            "type": "string",
            "description": "The request header at fault."
          }
        }
      },
      "ValidationProblem": {
        "description": "A problem naming each invalid field (type https://tally.dev/problems/validation, or idempotency-key-reused).",
        "allOf": [
          {
            "$ref": "#/components/schemas/Problem"
          },
          {
            "type": "object",
            "required": [
              "errors"
            ]
          }
        ]
      },
      "QuotaProblem": {
        "description": "A 429 problem naming the violated policies: key-rps, tenant-rps, api-calls or runs.",
        "allOf": [
          {
            "$ref": "#/components/schemas/Problem"
          },
          {
            "type": "object",
            "required": [
              "violated-policies"
            ],
            "properties": {
              "type": {
                "const": "https://iana.org/assignments/http-problem-types#quota-exceeded"
              },
              "status": {
                "const": 429
              },
              "violated-policies": {
                "type": "array",
                "items": {
                  "type": "string",
                  "enum": [
                    "key-rps",
                    "tenant-rps",
                    "api-calls",
                    "runs"
                  ]
                }
              }
            }
          }
        ]
      },
      "Health": {
        "type": "object",
        "required": [
          "status"
        ],
        "properties": {
          "status": {
            "type": "string",
            "enum": [
              "ok"
            ]
          }
        }
      },
      "Readiness": {
        "type": "object",
        "required": [
          "status",
          "database",
          "projections",
          "parkedStreams"
        ],
        "properties": {
          "status": {
            "type": "string",
            "enum": [
              "ready"
            ]
          },
          "database": {
            "type": "string",
            "enum": [
              "ok"
            ]
          },
          "projections": {
            "type": "string",
            "enum": [
              "ok"
            ]
          },
          "parkedStreams": {
            "type": "integer",
            "description": "Streams some projection could not apply and holds back. They do not make the instance unready: they concern the tenants they belong to."
          }
        }
      },
      "CreateTenant": {
        "title": "CreateTenant",
        "type": "object",
        "required": [
          "name",
          "slug",
          "plan"
        ],
        "properties": {
          "name": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": "1 to 200 characters after trimming; stored trimmed."
          },
          "slug": {
            "type": "string",
            "pattern": "^[a-z][a-z0-9-]{2,39}$",
            "description": "3 to 40 of a-z, 0-9 and -, starting with a letter; unique (the tenant id derives from it)."
          },
          "plan": {
            "type": "string",
            "description": "A configured plan's name (free, pro, enterprise by default)."
          }
        },
        "additionalProperties": false
      },
      "SuspendTenant": {
        "title": "SuspendTenant",
        "type": "object",
        "properties": {
          "reason": {
            "type": "string",
            "maxLength": 500,
            "description": "Defaults to \"suspended by the operator\"."
          }
        },
        "additionalProperties": false
      },
      "ChangePlan": {
        "title": "ChangePlan",
        "type": "object",
        "required": [
          "plan"
        ],
        "properties": {
          "plan": {
            "type": "string",
            "description": "A configured plan's name."
          }
        },
        "additionalProperties": false
      },
      "IssueKey": {
        "title": "IssueKey",
        "type": "object",
        "required": [
          "name"
        ],
        "properties": {
          "name": {
            "type": "string",
            "minLength": 1,
            "maxLength": 100
          },
          "expiresAt": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339; must be in the future. Absent: the key does not expire."
          }
        },
        "additionalProperties": false
      },
      "RotateKey": {
        "title": "RotateKey",
        "type": "object",
        "properties": {
          "graceSeconds": {
            "type": "integer",
            "minimum": 0,
            "maximum": 2592000,
            "description": "How long the old key keeps working; the server's configured default when absent."
          }
        },
        "additionalProperties": false
      },
      "DefineWorkflow": {
        "title": "DefineWorkflow",
        "type": "object",
        "required": [
          "name",
          "finders"
        ],
        "properties": {
          "name": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200
          },
          "finders": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": true,
            "items": {
              "type": "string",
              "enum": [
                "prospeo",
                "findymail"
              ]
            },
            "description": "The finders, asked in this order."
          },
          "validator": {
            "type": "string",
            "enum": [
              "zerobounce"
            ],
            "description": "Absent: found emails are not validated."
          },
          "maxAttempts": {
            "type": "integer",
            "minimum": 1,
            "maximum": 10,
            "default": 3
          }
        },
        "additionalProperties": false
      },
      "StartRuns": {
        "title": "StartRuns",
        "type": "object",
        "description": "Start one run (input) or a batch (inputs, 1 to 1,000): exactly one of the two. A 422 lists at most 50 errors.",
        "required": [
          "workflowId"
        ],
        "properties": {
          "workflowId": {
            "type": "string",
            "format": "uuid",
            "description": "One of the tenant's workflows; an unknown id is a 422 at /workflowId."
          },
          "input": {
            "$ref": "#/components/schemas/PersonInputRequest"
          },
          "inputs": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1000,
            "items": {
              "$ref": "#/components/schemas/PersonInputRequest"
            }
          }
        },
        "oneOf": [
          {
            "required": [
              "input"
            ]
          },
          {
            "required": [
              "inputs"
            ]
          }
        ],
        "additionalProperties": false
      },
      "PersonInputRequest": {
        "type": "object",
        "description": "One person to find an email for: fullName and domain, or linkedinUrl. Fields other than these three are ignored.",
        "properties": {
          "fullName": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": "Required (1 to 200 characters after trimming) unless linkedinUrl is given."
          },
          "domain": {
            "type": "string",
            "maxLength": 253,
            "description": "A company domain such as example.com; required unless linkedinUrl is given.",
            "examples": [
              "example.com"
            ]
          },
          "linkedinUrl": {
            "type": "string",
            "maxLength": 300,
            "description": "A profile URL starting https://www.linkedin.com/in/ or https://linkedin.com/in/; when given, fullName and domain are optional and not checked.",
            "examples": [
              "https://www.linkedin.com/in/ada-lovelace"
            ]
          }
        }
      },
      "CancelRun": {
        "title": "CancelRun",
        "type": "object",
        "properties": {
          "reason": {
            "type": "string",
            "maxLength": 500,
            "description": "Defaults to \"cancelled by the tenant\"."
          }
        },
        "additionalProperties": false
      },
      "Tenant": {
        "type": "object",
        "description": "A tenant as the operator sees it.",
        "required": [
          "id",
          "name",
          "slug",
          "plan",
          "status",
          "createdAt",
          "updatedAt"
        ],
        "properties": {
          "id": {
            "$ref": "#/components/schemas/Uuid"
          },
          "name": {
            "type": "string",
            "description": "Empty once the tenant is erased."
          },
          "slug": {
            "type": "string",
            "pattern": "^[a-z][a-z0-9-]{2,39}$"
          },
          "plan": {
            "type": "string",
            "description": "The plan's name (free, pro and enterprise unless the deployment configures others)."
          },
          "status": {
            "$ref": "#/components/schemas/TenantStatus"
          },
          "stripeCustomerId": {
            "type": "string",
            "description": "Present once a Stripe customer is linked."
          },
          "createdAt": {
            "$ref": "#/components/schemas/Timestamp"
          },
          "updatedAt": {
            "$ref": "#/components/schemas/Timestamp"
          }
        }
      },
      "TenantList": {
        "type": "object",
        "description": "A page of tenants, oldest first.",
        "required": [
          "items"
        ],
        "properties": {
          "items": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Tenant"
            }
          },
          "nextCursor": {
            "type": "string",
            "description": "Pass as cursor for the next page; absent on the last page."
          }
        }
      },
      "Key": {
        "type": "object",
        "description": "An API key's metadata; the plaintext key is never shown again after it is issued.",
        "required": [
          "id",
          "tenantId",
          "name",
          "displayPrefix",
          "status",
          "createdAt"
        ],
        "properties": {
          "id": {
            "$ref": "#/components/schemas/Uuid"
          },
          "tenantId": {
            "$ref": "#/components/schemas/Uuid"
          },
          "name": {
            "type": "string"
          },
          "displayPrefix": {
            "type": "string",
            "pattern": "^tly_[0-9a-f]{8}$",
            "description": "The first 12 characters of the key (tly_ and 8 hex digits), enough to recognise it.",
            "examples": [
              "tly_3f9a0c1d"
            ]
          },
          "status": {
            "type": "string",
            "enum": [
              "active",
              "rotated",
              "revoked"
            ],
            "description": "A rotated key keeps working until graceUntil."
          },
          "expiresAt": {
            "$ref": "#/components/schemas/Timestamp",
            "description": "Absent when the key does not expire."
          },
          "graceUntil": {
            "$ref": "#/components/schemas/Timestamp",
            "description": "Present once the key is rotated: it works until then."
          },
          "replacedBy": {
            "$ref": "#/components/schemas/Uuid",
            "description": "Present once the key is rotated: the replacement's id."
          },
          "createdAt": {
            "$ref": "#/components/schemas/Timestamp"
          }
        }
      },
      "KeyList": {
        "type": "object",
        "description": "All of the tenant's keys, oldest first (not paginated; nextCursor is never present).",
        "required": [
          "items"
        ],
        "properties": {
          "items": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Key"
            }
          }
        }
      },
      "IssuedKey": {
        "type": "object",
        "description": "A newly issued key: its metadata and, this once, the plaintext key. status is active; graceUntil and replacedBy are absent.",
        "required": [
          "id",
          "tenantId",
          "name",
          "displayPrefix",
          "status",
          "createdAt",
          "key"
        ],
        "properties": {
          "id": {
            "$ref": "#/components/schemas/Uuid"
          },
          "tenantId": {
            "$ref": "#/components/schemas/Uuid"
          },
          "name": {
            "type": "string"
          },
          "displayPrefix": {
            "type": "string",
            "pattern": "^tly_[0-9a-f]{8}$",
            "description": "The first 12 characters of the key (tly_ and 8 hex digits), enough to recognise it.",
            "examples": [
              "tly_3f9a0c1d"
            ]
          },
          "status": {
            "type": "string",
            "enum": [
              "active",
              "rotated",
              "revoked"
            ],
            "description": "A rotated key keeps working until graceUntil."
          },
          "expiresAt": {
            "$ref": "#/components/schemas/Timestamp",
            "description": "Absent when the key does not expire."
          },
          "graceUntil": {
            "$ref": "#/components/schemas/Timestamp",
            "description": "Present once the key is rotated: it works until then."
          },
          "replacedBy": {
            "$ref": "#/components/schemas/Uuid",
            "description": "Present once the key is rotated: the replacement's id."
          },
          "createdAt": {
            "$ref": "#/components/schemas/Timestamp"
          },
          "key": {
            "type": "string",
            "pattern": "^tly_[0-9a-f]{40}$",
            "description": "The plaintext key (tly_, 32 hex digits, 8 hex digits of checksum). Shown in this response only; store it now.",
            "examples": [
              "tly_3f9a0c1d5e7b2a4c6d8e0f1a2b3c4d5e9a8b7c6d"
            ]
          }
        }
      },
      "KeyRotation": {
        "type": "object",
        "description": "A key rotation: the replacement key (with its plaintext) and the grace period of the old one.",
        "required": [
          "key",
          "replaces",
          "replacedGraceUntil"
        ],
        "properties": {
          "key": {
            "$ref": "#/components/schemas/IssuedKey"
          },
          "replaces": {
            "$ref": "#/components/schemas/Uuid",
            "description": "The id of the key that was rotated."
          },
          "replacedGraceUntil": {
            "$ref": "#/components/schemas/Timestamp",
            "description": "Until when the rotated key keeps working."
          }
        }
      },
      "PlanLimits": {
        "type": "object",
        "description": "The limits of the tenant's plan.",
        "required": [
          "keyRequestsPerSecond",
          "tenantRequestsPerSecond"
        ],
        "properties": {
          "keyRequestsPerSecond": {
            "type": "integer",
            "minimum": 1
          },
          "tenantRequestsPerSecond": {
            "type": "integer",
            "minimum": 1
          },
          "monthlyApiCalls": {
            "type": "integer",
            "format": "int64",
            "minimum": 0,
            "description": "API calls per billing period; absent when unlimited."
          },
          "monthlyRuns": {
            "type": "integer",
            "format": "int64",
            "minimum": 0,
            "description": "Runs started per billing period; absent when unlimited."
          }
        }
      },
      "Usage": {
        "type": "object",
        "description": "A tenant's usage in one billing period.",
        "required": [
          "period",
          "periodStart",
          "periodEnd",
          "meters"
        ],
        "properties": {
          "period": {
            "type": "string",
            "pattern": "^[0-9]{4}-[0-9]{2}$",
            "description": "The billing period: a calendar month in UTC.",
            "examples": [
              "2025-01"
            ]
          },
          "periodStart": {
            "$ref": "#/components/schemas/Timestamp"
          },
          "periodEnd": {
            "$ref": "#/components/schemas/Timestamp",
            "description": "The start of the next period (exclusive end)."
          },
          "meters": {
            "type": "object",
            "description": "Quantity used per meter in the period. api_calls and runs are always present (0 when unused); vendor_calls:VENDOR and vendor_credits:VENDOR appear once a vendor is used.",
            "required": [
              "api_calls",
              "runs"
            ],
            "properties": {
              "api_calls": {
                "type": "integer",
                "format": "int64",
                "minimum": 0
              },
              "runs": {
                "type": "integer",
                "format": "int64",
                "minimum": 0
              }
            },
            "additionalProperties": {
              "type": "integer",
              "format": "int64"
            },
            "examples": [
              {
                "api_calls": 1532,
                "runs": 40,
                "vendor_calls:prospeo": 38,
                "vendor_credits:prospeo": 31
              }
            ]
          }
        }
      },
      "TenantSelf": {
        "type": "object",
        "description": "The calling tenant, its plan's limits and its usage this billing period.",
        "required": [
          "id",
          "name",
          "slug",
          "plan",
          "status",
          "limits",
          "usage"
        ],
        "properties": {
          "id": {
            "$ref": "#/components/schemas/Uuid"
          },
          "name": {
            "type": "string"
          },
          "slug": {
            "type": "string"
          },
          "plan": {
            "type": "string"
          },
          "status": {
            "$ref": "#/components/schemas/TenantStatus"
          },
          "limits": {
            "$ref": "#/components/schemas/PlanLimits"
          },
          "usage": {
            "$ref": "#/components/schemas/Usage",
            "description": "Usage in the current billing period."
          }
        }
      },
      "VendorSecret": {
        "type": "object",
        "description": "A vendor secret's metadata (never the secret).",
        "required": [
          "vendor",
          "fingerprint",
          "status",
          "secretVersion",
          "updatedAt"
        ],
        "properties": {
          "vendor": {
            "$ref": "#/components/schemas/Vendor"
          },
          "fingerprint": {
            "type": "string",
            "description": "Identifies the secret without revealing it."
          },
          "status": {
            "type": "string",
            "enum": [
              "active",
              "suspended",
              "removed"
            ]
          },
          "statusReason": {
            "type": "string",
            "description": "Why the key was suspended; absent otherwise."
          },
          "secretVersion": {
            "type": "integer"
          },
          "updatedAt": {
            "$ref": "#/components/schemas/Timestamp"
          }
        }
      },
      "VendorSecretList": {
        "type": "object",
        "description": "All of the tenant's vendor secrets, by vendor (not paginated; nextCursor is never present).",
        "required": [
          "items"
        ],
        "properties": {
          "items": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/VendorSecret"
            }
          }
        }
      },
      "WorkflowDefinition": {
        "type": "object",
        "description": "A workflow's settings.",
        "required": [
          "template",
          "finders",
          "maxAttempts"
        ],
        "properties": {
          "template": {
            "type": "string",
            "enum": [
              "email-waterfall"
            ],
            "description": "The one template so far."
          },
          "finders": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Vendor"
            },
            "description": "The finders, asked in this order until one finds an email."
          },
          "validator": {
            "$ref": "#/components/schemas/Vendor",
            "description": "Validates the found email; absent when the workflow does not validate."
          },
          "maxAttempts": {
            "type": "integer",
            "minimum": 1,
            "maximum": 10,
            "description": "Attempts per step before a transient failure fails the run."
          }
        }
      },
      "Workflow": {
        "type": "object",
        "description": "A workflow.",
        "required": [
          "id",
          "name",
          "definition",
          "createdAt",
          "updatedAt"
        ],
        "properties": {
          "id": {
            "$ref": "#/components/schemas/Uuid"
          },
          "name": {
            "type": "string"
          },
          "definition": {
            "$ref": "#/components/schemas/WorkflowDefinition"
          },
          "createdAt": {
            "$ref": "#/components/schemas/Timestamp"
          },
          "updatedAt": {
            "$ref": "#/components/schemas/Timestamp"
          }
        }
      },
      "WorkflowList": {
        "type": "object",
        "description": "A page of workflows, oldest first.",
        "required": [
          "items"
        ],
        "properties": {
          "items": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Workflow"
            }
          },
          "nextCursor": {
            "type": "string",
            "description": "Pass as cursor for the next page; absent on the last page."
          }
        }
      },
      "PersonInput": {
        "type": "object",
        "description": "The person a run looks for, as stored when it started (absent fields were not given; fullName is trimmed, domain lower-cased).",
        "properties": {
          "fullName": {
            "type": "string"
          },
          "domain": {
            "type": "string",
            "description": "Lower-cased when the run starts."
          },
          "linkedinUrl": {
            "type": "string"
          }
        }
      },
      "StartedRun": {
        "type": "object",
        "required": [
          "id",
          "status",
          "location"
        ],
        "properties": {
          "id": {
            "$ref": "#/components/schemas/Uuid"
          },
          "status": {
            "type": "string",
            "enum": [
              "running"
            ]
          },
          "location": {
            "type": "string",
            "description": "/v1/runs/{id}",
            "examples": [
              "/v1/runs/0b7e7a4e-3c8e-4f2a-9d51-6a7d2f0c1e35"
            ]
          }
        }
      },
      "StartedRuns": {
        "type": "object",
        "description": "The runs started.",
        "required": [
          "runs"
        ],
        "properties": {
          "batchId": {
            "$ref": "#/components/schemas/Uuid",
            "description": "Present when inputs (a batch) was given."
          },
          "runs": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/StartedRun"
            },
            "description": "In the order of the inputs."
          }
        }
      },
      "Run": {
        "type": "object",
        "description": "A run of a workflow for one person. Optional fields are absent until they have a value.",
        "required": [
          "id",
          "workflowId",
          "status",
          "input",
          "credits",
          "startedAt",
          "updatedAt"
        ],
        "properties": {
          "id": {
            "$ref": "#/components/schemas/Uuid"
          },
          "workflowId": {
            "$ref": "#/components/schemas/Uuid"
          },
          "batchId": {
            "$ref": "#/components/schemas/Uuid",
            "description": "Present when the run was started in a batch."
          },
          "status": {
            "type": "string",
            "enum": [
              "running",
              "parked",
              "succeeded",
              "not_found",
              "failed",
              "cancelled"
            ],
            "description": "running until the run ends; parked while it waits for the tenant to store a new vendor key (a step failed with keyFatal; the next step started makes it running again); a retry makes a failed run running again."
          },
          "input": {
            "$ref": "#/components/schemas/PersonInput"
          },
          "currentStep": {
            "type": "integer"
          },
          "currentVendor": {
            "type": "string"
          },
          "email": {
            "type": "string",
            "description": "The email found, once there is one."
          },
          "validationStatus": {
            "type": "string"
          },
          "reason": {
            "type": "string",
            "description": "Why the run failed, is parked or was cancelled."
          },
          "credits": {
            "type": "integer",
            "description": "Vendor credits used so far."
          },
          "startedAt": {
            "$ref": "#/components/schemas/Timestamp"
          },
          "updatedAt": {
            "$ref": "#/components/schemas/Timestamp"
          },
          "finishedAt": {
            "$ref": "#/components/schemas/Timestamp"
          },
          "steps": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Step"
            },
            "description": "Every step attempt in order; present on GET /v1/runs/{id} and on cancel, absent in lists."
          }
        }
      },
      "Step": {
        "type": "object",
        "description": "One attempt of one step of a run.",
        "required": [
          "step",
          "attempt",
          "kind",
          "vendor",
          "status",
          "credits",
          "scheduledAt"
        ],
        "properties": {
          "step": {
            "type": "integer",
            "minimum": 1,
            "description": "The step's number within the run, from 1."
          },
          "attempt": {
            "type": "integer",
            "minimum": 1
          },
          "kind": {
            "type": "string",
            "enum": [
              "find",
              "validate"
            ]
          },
          "vendor": {
            "$ref": "#/components/schemas/Vendor"
          },
          "status": {
            "type": "string",
            "enum": [
              "scheduled",
              "started",
              "finished",
              "failed"
            ]
          },
          "outcome": {
            "type": "string",
            "enum": [
              "found",
              "miss",
              "validated"
            ],
            "description": "Once finished."
          },
          "email": {
            "type": "string"
          },
          "validationStatus": {
            "type": "string",
            "description": "The validator's status (valid, invalid, catch-all...)."
          },
          "failure": {
            "type": "string",
            "enum": [
              "transient",
              "keyFatal"
            ],
            "description": "Once failed."
          },
          "reason": {
            "type": "string"
          },
          "credits": {
            "type": "integer",
            "description": "Vendor credits this attempt used."
          },
          "notBefore": {
            "$ref": "#/components/schemas/Timestamp",
            "description": "A retry is not attempted before this time."
          },
          "scheduledAt": {
            "$ref": "#/components/schemas/Timestamp"
          },
          "startedAt": {
            "$ref": "#/components/schemas/Timestamp"
          },
          "finishedAt": {
            "$ref": "#/components/schemas/Timestamp"
          }
        }
      },
      "RunList": {
        "type": "object",
        "description": "A page of runs, newest first (without steps).",
        "required": [
          "items"
        ],
        "properties": {
          "items": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Run"
            }
          },
          "nextCursor": {
            "type": "string",
            "description": "Pass as cursor for the next page; absent on the last page."
          }
        }
      },
      "ProjectionStatus": {
        "type": "object",
        "description": "Where a projection (read model) is.",
        "required": [
          "name",
          "version",
          "state",
          "position",
          "eventsApplied",
          "lagEvents",
          "lagSeconds",
          "parkedStreams"
        ],
        "properties": {
          "name": {
            "type": "string"
          },
          "version": {
            "type": "integer",
            "description": "The version this build applies."
          },
          "state": {
            "type": "string",
            "enum": [
              "running",
              "failed",
              "not started",
              "needs rebuild"
            ]
          },
          "position": {
            "$ref": "#/components/schemas/FeedPosition"
          },
          "eventsApplied": {
            "type": "integer",
            "format": "int64"
          },
          "lagEvents": {
            "type": "integer",
            "format": "int64",
            "description": "Events of any type after its position, which it has not read past yet (counted up to 1,000). A runner that keeps up records where it read to every second."
          },
          "lagSeconds": {
            "type": "number",
            "description": "Age of the oldest of those events; 0 when caught up."
          },
          "parkedStreams": {
            "type": "integer",
            "description": "Streams the projection could not apply and holds back (GET /v1/admin/parked-streams)."
          },
          "error": {
            "type": "string",
            "description": "Present only for a projection an earlier Tally stopped at an event it could not apply; this one parks the event's stream instead."
          },
          "errorPosition": {
            "type": "integer",
            "format": "int64"
          }
        }
      },
      "ProjectionStatusList": {
        "type": "object",
        "description": "All projections (not paginated; nextCursor is never present).",
        "required": [
          "items"
        ],
        "properties": {
          "items": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/ProjectionStatus"
            }
          }
        }
      },
      "StreamEvent": {
        "type": "object",
        "description": "The JSON in the data: field of a Server-Sent Events frame.",
        "required": [
          "type",
          "stream",
          "version",
          "position",
          "recordedAt",
          "data"
        ],
        "properties": {
          "type": {
            "type": "string",
            "description": "The event type, also the frame's event: field.",
            "enum": [
              "RunStarted",
              "StepScheduled",
              "StepStarted",
              "VendorCallBilled",
              "StepFinished",
              "StepFailed",
              "RunFinished",
              "RunCancelled",
              "WorkflowDefined",
              "WorkflowChanged"
            ]
          },
          "stream": {
            "type": "string",
            "description": "The stream, run-{id} or workflow-{id}.",
            "examples": [
              "run-0b7e7a4e-3c8e-4f2a-9d51-6a7d2f0c1e35"
            ]
          },
          "version": {
            "type": "integer",
            "format": "int64",
            "description": "The event's version in its stream, from 1."
          },
          "position": {
            "$ref": "#/components/schemas/FeedPosition"
          },
          "recordedAt": {
            "$ref": "#/components/schemas/Timestamp"
          },
          "data": {
            "type": "object",
            "description": "The event's payload, upcast to the current schema version."
          }
        }
      },
      "UsageStatement": {
        "type": "object",
        "description": "A tenant's usage in one billing period, priced by its plans.",
        "required": [
          "period",
          "periodStart",
          "periodEnd",
          "meters",
          "closed"
        ],
        "properties": {
          "period": {
            "type": "string",
            "pattern": "^[0-9]{4}-[0-9]{2}$",
            "description": "The billing period: a calendar month in UTC.",
            "examples": [
              "2025-01"
            ]
          },
          "periodStart": {
            "$ref": "#/components/schemas/Timestamp"
          },
          "periodEnd": {
            "$ref": "#/components/schemas/Timestamp",
            "description": "The start of the next period (exclusive end)."
          },
          "meters": {
            "type": "object",
            "description": "Quantity used per meter in the period. api_calls and runs are always present (0 when unused); vendor_calls:VENDOR and vendor_credits:VENDOR appear once a vendor is used.",
            "required": [
              "api_calls",
              "runs"
            ],
            "properties": {
              "api_calls": {
                "type": "integer",
                "format": "int64",
                "minimum": 0
              },
              "runs": {
                "type": "integer",
                "format": "int64",
                "minimum": 0
              }
            },
            "additionalProperties": {
              "type": "integer",
              "format": "int64"
            },
            "examples": [
              {
                "api_calls": 1532,
                "runs": 40,
                "vendor_calls:prospeo": 38,
                "vendor_credits:prospeo": 31
              }
            ]
          },
          "closed": {
            "type": "boolean",
            "description": "Whether the period has ended; until then the figures still grow."
          },
          "charges": {
            "type": "array",
            "description": "One line per meter and plan segment (a plan change splits the period), priced by the plan in effect, as finance exports them; the plan's base fee is a base_fee line prorated by the segment's share of the period. Absent when a plan of the period is no longer configured.",
            "items": {
              "$ref": "#/components/schemas/Charge"
            }
          },
          "totals": {
            "type": "object",
            "description": "The sum of the charges' amounts per currency, in minor units.",
            "additionalProperties": {
              "type": "integer",
              "format": "int64"
            }
          }
        }
      },
      "Charge": {
        "type": "object",
        "description": "One priced line of a period.",
        "required": [
          "plan",
          "meter",
          "lineStart",
          "lineEnd",
          "quantity",
          "unitPriceMicros",
          "amountMicros",
          "amount",
          "currency"
        ],
        "properties": {
          "plan": {
            "type": "string"
          },
          "meter": {
            "type": "string",
            "description": "base_fee, api_calls, runs, vendor_calls:VENDOR or vendor_credits:VENDOR.",
            "examples": [
              "api_calls"
            ]
          },
          "lineStart": {
            "type": "string",
            "format": "date-time",
            "description": "Where the line's part of the period starts (UTC)."
          },
          "lineEnd": {
            "type": "string",
            "format": "date-time",
            "description": "Where it ends (exclusive)."
          },
          "quantity": {
            "type": "integer",
            "format": "int64",
            "minimum": 0
          },
          "unitPriceMicros": {
            "type": "integer",
            "format": "int64",
            "description": "Price per unit in millionths of the currency unit (the whole period's fee for base_fee)."
          },
          "amountMicros": {
            "type": "integer",
            "format": "int64",
            "description": "Amount in millionths of the currency unit."
          },
          "amount": {
            "type": "integer",
            "format": "int64",
            "description": "Amount in the currency's minor unit, rounded half up."
          },
          "currency": {
            "type": "string",
            "description": "Lower-case ISO 4217.",
            "examples": [
              "usd"
            ]
          }
        }
      },
      "StoreVendorSecret": {
        "type": "object",
        "description": "A tenant's own key for a vendor.",
        "required": [
          "apiKey"
        ],
        "additionalProperties": false,
        "properties": {
          "apiKey": {
            "type": "string",
            "minLength": 1,
            "maxLength": 4096,
            "pattern": "^[!-~]+$",
            "writeOnly": true,
            "description": "The vendor's API key: 1 to 4096 printable ASCII characters without spaces. Sealed before it is written anywhere; never returned."
          }
        }
      },
      "EraseTenant": {
        "type": "object",
        "additionalProperties": false,
        "properties": {
          "reason": {
            "type": "string",
            "maxLength": 500,
            "description": "Recorded in TenantErased; default: erased by the operator."
          }
        }
      },
      "RetryRun": {
        "title": "RetryRun",
        "type": "object",
        "description": "No fields.",
        "properties": {},
        "additionalProperties": false
      },
      "RateWindowUse": {
        "type": "object",
        "required": [
          "limit",
          "seconds",
          "used"
        ],
        "properties": {
          "limit": {
            "type": "integer",
            "description": "Calls that may start within any period of this many seconds."
          },
          "seconds": {
            "type": "integer"
          },
          "used": {
            "type": "integer",
            "description": "Calls of this key started within the last seconds."
          }
        }
      },
      "FlowKey": {
        "type": "object",
        "description": "One tenant's key of one vendor as the workers' claims see it: a lane exists for every stored key and for every vendor a run waits on. Optional fields are absent when they have no value.",
        "required": [
          "vendor",
          "state",
          "limits",
          "waiting",
          "inFlight"
        ],
        "properties": {
          "vendor": {
            "$ref": "#/components/schemas/Vendor"
          },
          "tenantId": {
            "$ref": "#/components/schemas/Uuid",
            "description": "Operator answers only."
          },
          "fingerprint": {
            "type": "string",
            "description": "The stored key's fingerprint; absent when no key is stored."
          },
          "secretVersion": {
            "type": "integer",
            "description": "The stored key's version; absent when no key is stored."
          },
          "state": {
            "type": "string",
            "enum": [
              "active",
              "paused",
              "suspended",
              "no_key"
            ],
            "description": "no_key: no key stored (runs wait for one); suspended: the vendor refused the key (invalid or out of credits) until the tenant stores another; paused: the vendor asked to slow down (429) until pausedUntil; otherwise active."
          },
          "pausedUntil": {
            "$ref": "#/components/schemas/Timestamp",
            "description": "While paused."
          },
          "pauseReason": {
            "type": "string",
            "description": "While paused."
          },
          "suspendedReason": {
            "type": "string",
            "description": "While suspended."
          },
          "limits": {
            "type": "object",
            "required": [
              "parallelism",
              "windows"
            ],
            "description": "The limits in force: the tenant's override, else the vendor default, else the built-in limits.",
            "properties": {
              "parallelism": {
                "type": "integer",
                "description": "Calls of the key in flight at once."
              },
              "windows": {
                "type": "array",
                "items": {
                  "$ref": "#/components/schemas/RateWindowUse"
                },
                "description": "Every window must have room for a call to start; empty: no rate limit."
              }
            }
          },
          "waiting": {
            "type": "integer",
            "description": "Steps waiting for this vendor (due or not yet)."
          },
          "inFlight": {
            "type": "integer",
            "description": "Steps leased to a worker."
          },
          "oldestWaitingSeconds": {
            "type": "number",
            "description": "How long the oldest waiting step has waited; absent when nothing waits."
          }
        }
      },
      "FlowKeyList": {
        "type": "object",
        "description": "Flow keys ordered by tenant and vendor (not paginated; nextCursor is never present).",
        "required": [
          "items"
        ],
        "properties": {
          "items": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/FlowKey"
            }
          }
        }
      },
      "RateWindow": {
        "type": "object",
        "required": [
          "limit",
          "seconds"
        ],
        "additionalProperties": false,
        "properties": {
          "limit": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1000000,
            "description": "Calls that may start within any period of seconds."
          },
          "seconds": {
            "type": "integer",
            "minimum": 1,
            "maximum": 86400
          }
        }
      },
      "SetFlowLimits": {
        "title": "SetFlowLimits",
        "type": "object",
        "additionalProperties": false,
        "description": "Replaces the limits whole. A field absent or null inherits from the level above (a tenant override from the vendor default, the default from the built-in limits).",
        "properties": {
          "windows": {
            "type": [
              "array",
              "null"
            ],
            "items": {
              "$ref": "#/components/schemas/RateWindow"
            },
            "maxItems": 8,
            "description": "Rate windows, at most 8, no two with the same seconds; empty: no rate limit."
          },
          "parallelism": {
            "type": [
              "integer",
              "null"
            ],
            "minimum": 1,
            "maximum": 10000,
            "description": "Calls of one key in flight at once."
          }
        }
      },
      "FlowLimits": {
        "type": "object",
        "required": [
          "vendor",
          "scope"
        ],
        "description": "Flow limits at one level. windows or parallelism absent: inherited.",
        "properties": {
          "vendor": {
            "$ref": "#/components/schemas/Vendor"
          },
          "scope": {
            "type": "string",
            "enum": [
              "builtin",
              "default",
              "tenant"
            ],
            "description": "builtin: Tally's; default: the operator's for every tenant's keys of the vendor; tenant: one tenant's override."
          },
          "tenantId": {
            "$ref": "#/components/schemas/Uuid",
            "description": "For scope tenant."
          },
          "windows": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/RateWindow"
            },
            "description": "Empty: no rate limit."
          },
          "parallelism": {
            "type": "integer"
          },
          "updatedAt": {
            "$ref": "#/components/schemas/Timestamp",
            "description": "In lists: when the workers applied it."
          }
        }
      },
      "FlowLimitsList": {
        "type": "object",
        "description": "Flow limits by vendor, then built-in, default and tenant rows (not paginated; nextCursor is never present).",
        "required": [
          "items"
        ],
        "properties": {
          "items": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/FlowLimits"
            }
          }
        }
      },
      "ParkedStream": {
        "type": "object",
        "description": "A stream a reader (a projection, or the workers' dispatcher) could not apply. The reader holds its later events and goes on with every other stream until it is retried.",
        "required": [
          "reader",
          "stream",
          "streamVersion",
          "position",
          "eventType",
          "error",
          "heldEvents",
          "attempts",
          "parkedAt"
        ],
        "properties": {
          "reader": {
            "type": "string",
            "description": "A projection's name, dispatcher, or rebuild:<projection> while a rebuild runs."
          },
          "stream": {
            "type": "string"
          },
          "tenantId": {
            "type": "string",
            "format": "uuid"
          },
          "streamVersion": {
            "type": "integer",
            "format": "int64",
            "description": "The version of the event it failed on."
          },
          "position": {
            "$ref": "#/components/schemas/FeedPosition"
          },
          "eventType": {
            "type": "string"
          },
          "error": {
            "type": "string",
            "description": "Why the event could not be applied."
          },
          "heldEvents": {
            "type": "integer",
            "format": "int64",
            "description": "Later events of the stream held back since."
          },
          "attempts": {
            "type": "integer",
            "description": "Retries that failed."
          },
          "retryRequestedAt": {
            "type": "string",
            "format": "date-time",
            "description": "Present while a retry was asked for and not yet tried."
          },
          "parkedAt": {
            "type": "string",
            "format": "date-time"
          }
        }
      },
      "ParkedStreamList": {
        "type": "object",
        "required": [
          "items"
        ],
        "properties": {
          "items": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/ParkedStream"
            }
          }
        }
      }
    },
    "responses": {
      "BadRequest": {
        "description": "The request is malformed: the body is not valid JSON (malformed-json), the Idempotency-Key is not valid (invalid-idempotency-key), or Last-Event-ID is not an id of this API (invalid-last-event-id). On tenant routes the RateLimit fields are present too.",
        "headers": {
          "X-Request-Id": {
            "$ref": "#/components/headers/X-Request-Id"
          },
          "RateLimit": {
            "$ref": "#/components/headers/RateLimit"
          },
          "RateLimit-Policy": {
            "$ref": "#/components/headers/RateLimit-Policy"
          }
        },
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            },
            "example": {
              "type": "https://tally.dev/problems/malformed-json",
              "title": "Malformed JSON",
              "status": 400,
              "detail": "The body is not valid JSON."
            }
          }
        }
      },
      "Unauthorized": {
        "description": "The bearer credential is missing or not valid (unknown, malformed, revoked, expired, rotated past its grace period, or its tenant is not active).",
        "headers": {
          "X-Request-Id": {
            "$ref": "#/components/headers/X-Request-Id"
          },
          "WWW-Authenticate": {
            "$ref": "#/components/headers/WWW-Authenticate"
          }
        },
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            },
            "example": {
              "type": "https://tally.dev/problems/unauthorized",
              "title": "Unauthorized",
              "status": 401,
              "detail": "A valid bearer credential is required."
            }
          }
        }
      },
      "NotFound": {
        "description": "Nothing with this id exists for the caller (a path id that is not a UUID is 404 too). On tenant routes the RateLimit fields are present too.",
        "headers": {
          "X-Request-Id": {
            "$ref": "#/components/headers/X-Request-Id"
          },
          "RateLimit": {
            "$ref": "#/components/headers/RateLimit"
          },
          "RateLimit-Policy": {
            "$ref": "#/components/headers/RateLimit-Policy"
          }
        },
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            },
            "example": {
              "type": "https://tally.dev/problems/not-found",
              "title": "Not found",
              "status": 404,
              "detail": "No tenant with this id exists."
            }
          }
        }
      },
      "Conflict": {
        "description": "The request conflicts with the resource's state (see each operation), lost a race with another command on the same stream (retry it), or a request with the same Idempotency-Key is still being processed (idempotency-key-in-flight, with Retry-After), or a request with the same Idempotency-Key completed and its response revealed a secret, which is never replayed (idempotent-secret-not-replayed). On tenant routes the RateLimit fields are present too.",
        "headers": {
          "X-Request-Id": {
            "$ref": "#/components/headers/X-Request-Id"
          },
          "Retry-After": {
            "description": "1, on idempotency-key-in-flight.",
            "schema": {
              "type": "integer"
            }
          },
          "RateLimit": {
            "$ref": "#/components/headers/RateLimit"
          },
          "RateLimit-Policy": {
            "$ref": "#/components/headers/RateLimit-Policy"
          }
        },
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            },
            "example": {
              "type": "https://tally.dev/problems/conflict",
              "title": "Conflict",
              "status": 409,
              "detail": "The tenant is erased."
            }
          }
        }
      },
      "ContentTooLarge": {
        "description": "The request body is larger than 1,048,576 bytes (body-too-large). On tenant routes the RateLimit fields are present too.",
        "headers": {
          "X-Request-Id": {
            "$ref": "#/components/headers/X-Request-Id"
          },
          "RateLimit": {
            "$ref": "#/components/headers/RateLimit"
          },
          "RateLimit-Policy": {
            "$ref": "#/components/headers/RateLimit-Policy"
          }
        },
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            },
            "example": {
              "type": "https://tally.dev/problems/body-too-large",
              "title": "Body too large",
              "status": 413,
              "detail": "Request bodies are limited to 1048576 bytes."
            }
          }
        }
      },
      "UnsupportedMediaType": {
        "description": "The body's Content-Type is not application/json (unsupported-media-type). On tenant routes the RateLimit fields are present too.",
        "headers": {
          "X-Request-Id": {
            "$ref": "#/components/headers/X-Request-Id"
          },
          "Accept": {
            "$ref": "#/components/headers/Accept"
          },
          "RateLimit": {
            "$ref": "#/components/headers/RateLimit"
          },
          "RateLimit-Policy": {
            "$ref": "#/components/headers/RateLimit-Policy"
          }
        },
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            },
            "example": {
              "type": "https://tally.dev/problems/unsupported-media-type",
              "title": "Unsupported media type",
              "status": 415,
              "detail": "The body must be application/json."
            }
          }
        }
      },
      "UnprocessableContent": {
        "description": "A field, query parameter or header is not valid (validation: missing, mistyped, unknown or out-of-range fields, each located in errors), or the Idempotency-Key was used with another payload (idempotency-key-reused). On tenant routes the RateLimit fields are present too.",
        "headers": {
          "X-Request-Id": {
            "$ref": "#/components/headers/X-Request-Id"
          },
          "RateLimit": {
            "$ref": "#/components/headers/RateLimit"
          },
          "RateLimit-Policy": {
            "$ref": "#/components/headers/RateLimit-Policy"
          }
        },
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/ValidationProblem"
            },
            "example": {
              "type": "https://tally.dev/problems/validation",
              "title": "The request is not valid",
              "status": 422,
              "detail": "slug is not a field of this request",
              "errors": [
                {
                  "detail": "slug is not a field of this request",
                  "pointer": "/slug"
                }
              ]
            }
          }
        }
      },
      "TooManyRequests": {
        "description": "A limit of the plan is reached: requests per second per key (key-rps) or per tenant (tenant-rps), the monthly API calls (api-calls), or on POST /v1/runs the monthly runs (runs). Retry-After is never earlier than the reset. The RateLimit fields describe the key-rps, tenant-rps and api-calls policies, for a runs 429 too.",
        "headers": {
          "X-Request-Id": {
            "$ref": "#/components/headers/X-Request-Id"
          },
          "Retry-After": {
            "$ref": "#/components/headers/Retry-After"
          },
          "RateLimit": {
            "description": "What remains of each policy.",
            "required": true,
            "schema": {
              "type": "string"
            },
            "example": "\"key-rps\";r=0;t=1, \"tenant-rps\";r=7;t=1, \"api-calls\";r=9950;t=1036800"
          },
          "RateLimit-Policy": {
            "description": "The plan's policies.",
            "required": true,
            "schema": {
              "type": "string"
            },
            "example": "\"key-rps\";q=5;w=1, \"tenant-rps\";q=10;w=1, \"api-calls\";q=10000;w=2678400"
          }
        },
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/QuotaProblem"
            },
            "example": {
              "type": "https://iana.org/assignments/http-problem-types#quota-exceeded",
              "title": "Quota exceeded",
              "status": 429,
              "detail": "More than the plan's requests per second; retry after the window resets.",
              "violated-policies": [
                "key-rps"
              ]
            }
          }
        }
      },
      "InternalServerError": {
        "description": "The request failed on the server (internal); the X-Request-Id identifies it in the logs.",
        "headers": {
          "X-Request-Id": {
            "$ref": "#/components/headers/X-Request-Id"
          }
        },
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            },
            "example": {
              "type": "https://tally.dev/problems/internal",
              "title": "Internal server error",
              "status": 500,
              "detail": "The request failed on the server; its request id identifies it in the logs."
            }
          }
        }
      },
      "ServiceUnavailable": {
        "description": "The service cannot answer now, and nothing was done: the database is unreachable or restarting, every connection is busy, a statement timed out, or concurrent writers kept the request from committing (unavailable, with Retry-After: send the same request again); not ready (not-ready); the resource's history could not all be applied (stream-parked: an operator must fix and retry it); or the key's own history is parked (parked).",
        "headers": {
          "X-Request-Id": {
            "$ref": "#/components/headers/X-Request-Id"
          },
          "Retry-After": {
            "description": "Seconds to wait before sending the same request again (with unavailable and not-ready).",
            "schema": {
              "type": "integer"
            }
          }
        },
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            },
            "example": {
              "type": "https://tally.dev/problems/not-ready",
              "title": "Not ready",
              "status": 503,
              "detail": "The database is not reachable."
            }
          }
        }
      }
    },
    "parameters": {
      "X-Request-Id": {
        "name": "X-Request-Id",
        "in": "header",
        "required": false,
        "description": "Optional request id, echoed in the X-Request-Id response header when it is 1 to 128 printable ASCII characters without space, quote or backslash (otherwise ignored).",
        "schema": {
          "type": "string",
          "maxLength": 128
        }
      },
      "traceparent": {
        "name": "traceparent",
        "in": "header",
        "required": false,
        "description": "W3C Trace Context; without a valid X-Request-Id, its trace id (32 lower-case hex digits, not all zero) becomes the request id.",
        "schema": {
          "type": "string"
        },
        "example": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
      },
      "Idempotency-Key": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Makes the POST safe to repeat (draft-ietf-httpapi-idempotency-key-header): a structured-field string (a bare token is accepted too) of 1 to 255 printable ASCII characters without quote or backslash; otherwise 400. Scoped to the tenant (the operator has its own scope) and kept 24 hours: a repeat with the same payload gets the stored response (2xx to 4xx) with Idempotent-Replayed: true, except that a response revealing a secret (Cache-Control: no-store: issuing or rotating a key) is not stored and a repeat gets 409 idempotent-secret-not-replayed (with the original Location, if any); a repeat while the first is still running gets 409; the same key with another payload gets 422. A first request whose process died is taken over after 60 seconds.",
        "schema": {
          "type": "string",
          "maxLength": 257
        },
        "example": "\"8e03978e-40d5-43e8-bc93-6894a57f9324\""
      },
      "Last-Event-ID": {
        "name": "Last-Event-ID",
        "in": "header",
        "required": false,
        "description": "The id of the last event received on an earlier stream of this tenant: the stream goes on right after it. Any other value (forged, another tenant's) is 400 invalid-last-event-id.",
        "schema": {
          "type": "string",
          "maxLength": 128
        }
      },
      "limit": {
        "name": "limit",
        "in": "query",
        "required": false,
        "description": "Page size; anything but an integer from 1 to 200 is 422.",
        "schema": {
          "type": "integer",
          "minimum": 1,
          "maximum": 200,
          "default": 50
        }
      },
      "cursor": {
        "name": "cursor",
        "in": "query",
        "required": false,
        "description": "The nextCursor of the previous page (opaque); anything else is 422.",
        "schema": {
          "type": "string"
        }
      },
      "tenantId": {
        "name": "id",
        "in": "path",
        "required": true,
        "description": "The tenant's id.",
        "schema": {
          "type": "string",
          "format": "uuid"
        }
      },
      "keyId": {
        "name": "keyId",
        "in": "path",
        "required": true,
        "description": "The key's id.",
        "schema": {
          "type": "string",
          "format": "uuid"
        }
      },
      "workflowId": {
        "name": "id",
        "in": "path",
        "required": true,
        "description": "The workflow's id.",
        "schema": {
          "type": "string",
          "format": "uuid"
        }
      },
      "runId": {
        "name": "id",
        "in": "path",
        "required": true,
        "description": "The run's id.",
        "schema": {
          "type": "string",
          "format": "uuid"
        }
      },
      "vendor": {
        "name": "vendor",
        "in": "path",
        "required": true,
        "description": "The vendor; another name is 404.",
        "schema": {
          "$ref": "#/components/schemas/Vendor"
        }
      }
    },
    "headers": {
      "X-Request-Id": {
        "description": "The request id, on every response: the request's own X-Request-Id when it is 1 to 128 printable ASCII characters without space, quote or backslash, else the trace id of a valid traceparent, else a new lower-case UUID. Logs carry the same id.",
        "required": true,
        "schema": {
          "type": "string",
          "minLength": 1,
          "maxLength": 128
        },
        "example": "0b7e7a4e-3c8e-4f2a-9d51-6a7d2f0c1e35"
      },
      "RateLimit": {
        "description": "Tenant routes: what remains of each policy (draft-ietf-httpapi-ratelimit-headers): r is the remaining quota, t the seconds until it resets. key-rps and tenant-rps always; api-calls when the plan has a monthly API-call quota.",
        "schema": {
          "type": "string"
        },
        "example": "\"key-rps\";r=4;t=1, \"tenant-rps\";r=9;t=1, \"api-calls\";r=9950;t=1036800"
      },
      "RateLimit-Policy": {
        "description": "Tenant routes: the plan's policies: q is the quota, w the window in seconds. key-rps (requests per second per key) and tenant-rps (per tenant) always; api-calls (per billing period) when the plan has a monthly API-call quota.",
        "schema": {
          "type": "string"
        },
        "example": "\"key-rps\";q=5;w=1, \"tenant-rps\";q=10;w=1, \"api-calls\";q=10000;w=2678400"
      },
      "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": true,
        "schema": {
          "type": "integer",
          "minimum": 1
        },
        "example": 1
      },
      "Location": {
        "description": "Where the created or started resource can be read.",
        "required": true,
        "schema": {
          "type": "string"
        }
      },
      "Idempotent-Replayed": {
        "description": "true when this is the stored response to an earlier request with the same Idempotency-Key and payload (stored responses keep Content-Type, Location and Cache-Control). Replayed error answers (below 500) carry it too.",
        "schema": {
          "type": "string",
          "enum": [
            "true"
          ]
        }
      },
      "Cache-Control": {
        "description": "no-store: the body holds a plaintext API key or a live stream.",
        "required": true,
        "schema": {
          "type": "string",
          "enum": [
            "no-store"
          ]
        }
      },
      "WWW-Authenticate": {
        "description": "The bearer challenge.",
        "required": true,
        "schema": {
          "type": "string"
        },
        "example": "Bearer realm=\"tally\""
      },
      "Accept": {
        "description": "The media type request bodies must have.",
        "required": true,
        "schema": {
          "type": "string",
          "enum": [
            "application/json"
          ]
        }
      },
      "X-Accel-Buffering": {
        "description": "no: asks a reverse proxy not to buffer the stream.",
        "required": true,
        "schema": {
          "type": "string",
          "enum": [
            "no"
          ]
        }
      }
    },
    "securitySchemes": {
      "operatorToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator token (TALLY_OPERATOR_TOKEN), for /v1/admin."
      },
      "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "tly_...",
        "description": "A tenant API key: tly_ followed by 40 hex digits."
      }
    }
  }
}
"""##
}

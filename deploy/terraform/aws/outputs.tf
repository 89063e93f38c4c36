output "api_url" {
  description = "Public URL of the llmo API (OpenAI /v1 and Ollama /api)."
  value       = "http://${aws_lb.main.dns_name}"
}

output "ecr_repository_url" {
  description = "Push the llmo image here."
  value       = aws_ecr_repository.llmo.repository_url
}

output "models_ecr_repository_url" {
  description = "OCI repository for model artifacts (llmo push FILE oci://...)."
  value       = aws_ecr_repository.models.repository_url
}

output "efs_file_system_id" {
  description = "EFS file system holding models and the storage service's data."
  value       = aws_efs_file_system.models.id
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.main.name
}

output "vpc_id" {
  description = "VPC id."
  value       = aws_vpc.main.id
}
